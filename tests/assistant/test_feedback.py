"""Feedback on answers: given and changed by the conversation's author only, audited, and read
by collection admins (their collections) and auditors (all)."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from assistant import audit
from assistant.feedback import cited_documents
from assistant.models import AuditEvent, Conversation, Feedback, Message, QueryRecord
from ingestion import pipeline
from ingestion.models import Collection, Document
from tests.assistant.test_chat import ask
from tests.conftest import login
from tests.factories import make_auditor, make_document, make_user

pytestmark = pytest.mark.embedded
Action = AuditEvent.Action
HTMX = {"HTTP_HX_REQUEST": "true"}


def make_document_row(collection: Collection, title: str) -> Document:
    # Only the id and title matter here: no file, no ingestion.
    return Document.objects.create(
        collection=collection, title=title, original_name=f"{title}.txt", size=1, sha256="0" * 64
    )


def make_answer(
    user,
    collections: list[Collection],
    documents: list[Document] = (),
    question: str = "Why?",
    cited: list[Document] | None = None,
) -> Message:
    """A finished, chained answer in a conversation of the user's, showing one passage of each
    document as a source and citing those of `cited` (default: all)."""
    retrieved = [{"point_id": f"point-{d.pk}", "document_id": d.pk} for d in documents]
    numbers = [n for n, d in enumerate(documents, start=1) if cited is None or d in cited]
    conversation = Conversation.objects.create(user=user, title=question)
    record = QueryRecord.objects.create(
        user_ref=user.pk,
        username=user.username,
        conversation_ref=conversation.pk,
        question=question,
        scope=[{"id": c.pk, "name": c.name} for c in collections],
        collection_keys=audit.keys([c.pk for c in collections]),
        document_keys=audit.keys([d.pk for d in documents]),
        retrieved=retrieved,
        grounding={"shown": [r["point_id"] for r in retrieved]},
    )
    answer = "Because " + (" ".join(f"[{n}]" for n in numbers) or "[1]") + "."
    with transaction.atomic():
        audit.finalize(record, answer=answer, outcome=QueryRecord.Outcome.ANSWERED)
    Message.objects.create(conversation=conversation, role=Message.Role.USER, content=question)
    return Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, content="Because.", query=record
    )


def feedback_url(message: Message) -> str:
    return reverse("chat:feedback", args=[message.conversation_id, message.pk])


def rate(user, message: Message, **data: object):
    return login(user).post(feedback_url(message), data, **HTMX)


# --- giving feedback ------------------------------------------------------------------------


def test_the_author_rates_an_answer_and_the_trail_keeps_it(people) -> None:
    answer = make_answer(people.teammate, [people.legal])
    response = rate(
        people.teammate, answer, rating="down", reasons=["wrong", "bogus"], comment=" Off. "
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="feedback-down-' in html and "your feedback was saved" in html
    assert f'value="down" id="feedback-down-{answer.pk}" class="feedback-rating"\n' in html
    assert html.count('aria-pressed="true"') == 1
    feedback = Feedback.objects.get()
    assert (feedback.record, feedback.user) == (answer.query, people.teammate)
    assert (feedback.rating, feedback.reasons, feedback.comment) == ("down", ["wrong"], "Off.")
    event = AuditEvent.objects.get(action=Action.FEEDBACK_GIVEN)
    assert event.actor_username == "teammate"
    assert (event.target_type, event.target_id) == ("assistant.queryrecord", str(answer.query_id))
    assert event.detail == {
        "feedback": feedback.pk, "rating": "down", "reasons": ["wrong"], "comment": "Off."
    }  # fmt: skip
    assert audit.verify()[1] is None


def test_a_change_updates_the_one_row_and_is_audited_as_a_change(people) -> None:
    answer = make_answer(people.teammate, [people.legal])
    rate(people.teammate, answer, rating="down", reasons=["outdated"])
    rate(people.teammate, answer, rating="up", reasons=["outdated"], comment="Fine after all")
    rate(people.teammate, answer, rating="up", comment="Fine after all")  # no change
    feedback = Feedback.objects.get()
    assert (feedback.rating, feedback.reasons, feedback.comment) == ("up", [], "Fine after all")
    actions = list(
        AuditEvent.objects.filter(action__startswith="feedback")
        .order_by("seq")
        .values_list("action", "detail__rating")
    )
    assert actions == [(Action.FEEDBACK_GIVEN, "down"), (Action.FEEDBACK_CHANGED, "up")]


def test_a_long_comment_is_kept_bounded_in_the_trail(people) -> None:
    answer = make_answer(people.teammate, [people.legal])
    rate(people.teammate, answer, rating="down", comment="x" * 5000)
    assert len(Feedback.objects.get().comment) == 1000
    assert len(AuditEvent.objects.get(action=Action.FEEDBACK_GIVEN).detail["comment"]) == 301


def test_no_one_but_the_author_may_rate_an_answer(people) -> None:
    answer = make_answer(people.teammate, [people.legal])
    # The collection's manager and an auditor are not the conversation's author either.
    for user in (people.outsider, people.owner, make_auditor()):
        assert rate(user, answer, rating="down").status_code == 404
    assert not Feedback.objects.exists()
    assert AuditEvent.objects.filter(action=Action.ACCESS_DENIED).count() == 3


def test_an_answer_of_another_conversation_is_not_found_through_this_one(people) -> None:
    mine = make_answer(people.teammate, [people.legal])
    other = make_answer(people.outsider, [people.sales])
    url = reverse("chat:feedback", args=[mine.conversation_id, other.pk])
    response = login(people.teammate).post(url, {"rating": "up"}, **HTMX)
    assert response.status_code == 404
    question = mine.conversation.messages.get(role=Message.Role.USER)
    url = reverse("chat:feedback", args=[mine.conversation_id, question.pk])
    assert login(people.teammate).post(url, {"rating": "up"}).status_code == 404
    assert not Feedback.objects.exists()


def test_a_rating_must_be_up_or_down_and_only_by_post(people) -> None:
    answer = make_answer(people.teammate, [people.legal])
    assert rate(people.teammate, answer, rating="meh").status_code == 400
    assert login(people.teammate).get(feedback_url(answer)).status_code == 405
    assert not Feedback.objects.exists()


def test_without_htmx_the_form_posts_and_returns_to_the_answer(people) -> None:
    answer = make_answer(people.teammate, [people.legal])
    response = login(people.teammate).post(feedback_url(answer), {"rating": "up"})
    conversation = reverse("chat:conversation", args=[answer.conversation_id])
    assert response.status_code == 302 and response["Location"] == f"{conversation}#msg-{answer.pk}"
    assert Feedback.objects.get().rating == "up"


def test_the_chat_shows_each_answer_with_its_feedback_form(people) -> None:
    answer = make_answer(people.teammate, [people.legal])
    rate(people.teammate, answer, rating="up")
    html = login(people.teammate).get(reverse("chat:conversation", args=[answer.conversation_id]))
    page = html.content.decode()
    assert f'hx-post="{feedback_url(answer)}"' in page
    assert f'id="feedback-up-{answer.pk}" class="feedback-rating"' in page
    assert page.count('aria-pressed="true"') == 1 and page.count('aria-pressed="false"') == 1
    assert "enclave/feedback.js" in page


# --- the Feedback page ----------------------------------------------------------------------


@pytest.fixture
def rated(people):
    """Disliked answers in Legal (managed by owner) and in Sales, one liked in Legal; the
    glossary was shown as a source of both disliked Legal answers, cited by neither."""
    handbook = make_document_row(people.legal, "Handbook")
    contract = make_document_row(people.legal, "Contract")
    glossary = make_document_row(people.legal, "Glossary")
    pricing = make_document_row(people.sales, "Pricing")
    shown, cited = [glossary, handbook, contract], [handbook, contract]
    legal = make_answer(people.teammate, [people.legal], shown, "Leave days?", cited)
    legal2 = make_answer(
        people.teammate, [people.legal], [handbook, glossary], "Notice period?", [handbook]
    )
    liked = make_answer(people.teammate, [people.legal], [contract], "Who signs?")
    sales = make_answer(people.outsider, [people.sales], [pricing], "SALES-ONLY discount?")
    rate(people.teammate, legal, rating="down", reasons=["wrong"], comment="=HYPERLINK(1)")
    rate(people.teammate, legal2, rating="down", reasons=["incomplete"])
    rate(people.teammate, liked, rating="up")
    rate(people.outsider, sales, rating="down", comment="SALES-COMMENT")
    return type("Rated", (), {"handbook": handbook, "contract": contract, "pricing": pricing})


def test_a_collection_admin_reads_feedback_on_their_collections_only(people, rated) -> None:
    response = login(people.owner).get(reverse("feedback:index"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Leave days?" in page and "Notice period?" in page and "Who signs?" in page
    assert "SALES-ONLY" not in page and "SALES-COMMENT" not in page and "Pricing" not in page
    assert "teammate" not in page.split("</header>")[1]  # who said it is for auditors
    assert f'href="{reverse("feedback:index")}"' in page  # the navigation link
    viewed = AuditEvent.objects.get(action=Action.AUDIT_VIEWED)
    assert viewed.actor_username == "owner" and viewed.detail == {"page": "feedback", "filters": {}}
    # The handbook was cited by both disliked answers, the contract by one; the glossary was
    # only shown.
    top = page.split('class="disliked-documents"')[1].split("</ol>")[0]
    assert top.index("Handbook") < top.index("Contract")
    assert "2 disliked answers" in top and "1 disliked answer<" in top
    assert "Glossary" not in top


def test_only_sources_an_answer_cites_count_and_a_purged_record_cites_none() -> None:
    retrieved = [{"point_id": "a", "document_id": 7}, {"point_id": "b", "document_id": 8}]
    checks = {"shown": ["b", "a"]}
    assert cited_documents("Yes [2], and [2] again.", retrieved, checks) == {7}
    assert cited_documents("Yes [1] [3] [0].", retrieved, checks) == {8}
    assert cited_documents("", [], {}) == set()


def test_an_admin_filtering_by_a_collection_they_do_not_manage_sees_nothing(people, rated):
    url = reverse("feedback:index") + f"?collection={people.sales.pk}"
    page = login(people.owner).get(url).content.decode()
    assert "SALES-ONLY" not in page and "No feedback matches." in page


def test_an_auditor_reads_all_feedback_with_who_gave_it(people, rated) -> None:
    page = login(make_auditor()).get(reverse("feedback:index")).content.decode()
    assert "SALES-ONLY" in page and "Leave days?" in page and "outsider" in page
    assert "Pricing" in page


def test_auditors_filter_by_collection_rating_and_date(people, rated) -> None:
    client = login(make_auditor())
    url = reverse("feedback:index")
    page = client.get(url, {"collection": people.sales.pk}).content.decode()
    assert "SALES-ONLY" in page and "Leave days?" not in page
    page = client.get(url, {"rating": "up"}).content.decode()
    assert "Who signs?" in page and "Leave days?" not in page
    today = timezone.now().date()
    assert "Who signs?" in client.get(url, {"since": today.isoformat()}).content.decode()
    yesterday = (today - timedelta(days=1)).isoformat()
    page = client.get(url, {"until": yesterday}).content.decode()
    assert "No feedback matches." in page
    response = client.get(url, {"since": "last week"})
    assert response.status_code == 302 and response["Location"] == url


def test_employees_may_not_read_feedback(people, rated, client) -> None:
    assert login(people.teammate).get(reverse("feedback:index")).status_code == 403
    assert login(people.teammate).get(reverse("feedback:export")).status_code == 403
    chat = login(people.teammate).get(reverse("chat:index")).content.decode()
    assert f'href="{reverse("feedback:index")}"' not in chat
    response = client.get(reverse("feedback:index"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_htmx_paging_returns_only_the_next_rows(people, rated, monkeypatch) -> None:
    monkeypatch.setattr("assistant.feedback.PAGE_SIZE", 2)
    client = login(make_auditor())
    page = client.get(reverse("feedback:index")).content.decode()
    assert "Load more" in page and 'hx-get="?&amp;page=2"' in page
    rows = client.get(reverse("feedback:index"), {"page": 2}, **HTMX).content.decode()
    assert "<h1>" not in rows and rows.count("<tr>") == 2 and "Load more" not in rows


def read_csv(response) -> list[dict]:
    assert response["Content-Type"] == "text/csv"
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_export_neutralises_formulas_and_is_audited(people, rated) -> None:
    rows = read_csv(login(people.owner).get(reverse("feedback:export"), {"rating": "down"}))
    assert sorted(r["question"] for r in rows) == ["Leave days?", "Notice period?"]
    formula = next(r for r in rows if r["question"] == "Leave days?")
    assert formula["comment"] == "'=HYPERLINK(1)" and formula["reasons"] == "wrong"
    assert {r["username"] for r in rows} == {""}  # an admin's export names no one
    event = AuditEvent.objects.get(action=Action.AUDIT_EXPORTED)
    assert event.actor_username == "owner" and event.detail["export"] == "feedback"
    rows = read_csv(login(make_auditor("auditor2")).get(reverse("feedback:export")))
    assert len(rows) == 4 and "outsider" in {r["username"] for r in rows}


def test_a_superuser_sees_the_feedback_page(people, rated) -> None:
    root = make_user("root", is_superuser=True)
    assert "SALES-ONLY" in login(root).get(reverse("feedback:index")).content.decode()


def test_a_disliked_chat_answer_counts_the_documents_it_cites_not_those_it_shows(
    people, fake_llm
) -> None:
    refunds = make_document(people.legal, "refunds.txt", b"Refunds take 14 days, item arrived.")
    pipeline.ingest(refunds.pk)
    for tokens in (["Refunds take 14 days [1]."], ["I cannot tell from the documents."]):
        fake_llm.tokens = tokens
        ask(people.teammate)
        answer = Message.objects.filter(role=Message.Role.ASSISTANT).latest("id")
        assert answer.sources and answer.sources[0]["document_id"] == refunds.pk  # shown
        rate(people.teammate, answer, rating="down")
    page = login(people.owner).get(reverse("feedback:index")).content.decode()
    top = page.split('class="disliked-documents"')[1].split("</ol>")[0]
    assert "refunds" in top and "1 disliked answer<" in top
