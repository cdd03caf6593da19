"""A conversation searches the collections picked for it, narrowed at every question to those
its user can read then."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from assistant.models import AuditEvent, Conversation, QueryRecord
from ingestion import index, pipeline
from tests.conftest import login, read_events
from tests.factories import make_document, make_pdf, make_user

pytestmark = pytest.mark.embedded

QUESTION = "How long do refunds take?"


@pytest.fixture
def library(people):
    """Legal and Sales each answer the question; `both` reads the two collections."""
    legal = make_document(people.legal, "refunds.pdf", make_pdf(["Refunds take 14 days."]))
    sales = make_document(people.sales, "sales.txt", b"SALES-CANARY: refunds take 3 days.")
    for document in (legal, sales):
        pipeline.ingest(document.pk)
    return make_user("both", groups=["Legal", "Sales"])


def ask(user, conversation: Conversation | None = None, **data) -> list:
    url = reverse("chat:ask", args=[conversation.pk]) if conversation else reverse("chat:ask_new")
    response = login(user).post(url, {"question": QUESTION, **data})
    assert response.status_code == 200
    return read_events(response)


def answer_text(events: list) -> str:
    return "".join(data["text"] for name, data in events if name == "token")


def searched(record: QueryRecord) -> set[int]:
    return {r["collection_id"] for r in record.retrieved}


def denied_events() -> list[dict]:
    return [e.detail for e in AuditEvent.objects.filter(action=AuditEvent.Action.ACCESS_DENIED)]


def test_a_new_conversation_searches_the_picked_collections_and_so_do_follow_ups(
    people, library, fake_llm
) -> None:
    ask(library, scope=[people.legal.pk])
    conversation = Conversation.objects.get()
    assert conversation.scope == [people.legal.pk]
    ask(library, conversation)  # a follow-up sends no scope: the conversation's is used
    for record in QueryRecord.objects.all():
        assert record.scope == [{"id": people.legal.pk, "name": "Legal"}]
        assert record.collection_keys == f",{people.legal.pk},"
        assert searched(record) == {people.legal.pk}
    assert "SALES-CANARY" not in str(fake_llm.requests)
    assert denied_events() == []


def test_without_a_pick_a_conversation_searches_everything_readable(
    people, library, fake_llm
) -> None:
    ask(library)
    record = QueryRecord.objects.get()
    assert [c["name"] for c in record.scope] == ["Legal", "Sales"]
    assert searched(record) == {people.legal.pk, people.sales.pk}


def test_a_collection_the_user_cannot_read_is_ignored_and_recorded(
    people, library, fake_llm
) -> None:
    """Reliability #3: requested vs effective collections in the denied event."""
    ask(people.teammate, scope=[people.legal.pk, people.sales.pk])
    assert Conversation.objects.get().scope == [people.legal.pk]
    record = QueryRecord.objects.get()
    assert [c["id"] for c in record.scope] == [people.legal.pk]
    assert searched(record) == {people.legal.pk}
    assert denied_events() == [
        {
            "reason": "unreadable collections ignored",
            "collections": [people.sales.pk],
            "requested": [people.legal.pk, people.sales.pk],
            "effective": [people.legal.pk],
        }
    ]


def test_only_unreadable_collections_give_the_empty_scope_answer(
    people, library, fake_llm, monkeypatch
) -> None:
    """Reliability #2, #3: only unreadable ids picked: nothing is searched."""
    monkeypatch.setattr(index, "search", lambda *a, **k: pytest.fail("Qdrant was queried"))
    events = ask(people.teammate, scope=[people.sales.pk])
    assert "found nothing" in answer_text(events)
    record = QueryRecord.objects.get()
    assert (record.outcome, record.scope, fake_llm.requests) == ("denied", [], [])
    assert denied_events()[0]["collections"] == [people.sales.pk]


def test_a_started_conversation_ignores_a_scope_sent_with_a_question(
    people, library, fake_llm
) -> None:
    ask(people.teammate)
    conversation = Conversation.objects.get()
    ask(people.teammate, conversation, scope=[people.sales.pk])
    assert Conversation.objects.get().scope is None
    assert searched(QueryRecord.objects.order_by("id").last()) == {people.legal.pk}
    assert denied_events()[0]["collections"] == [people.sales.pk]


def test_a_revoked_collection_drops_out_at_the_next_question(people, library, fake_llm) -> None:
    """Reliability #6: a revoked grant drops out at the next question."""
    ask(library, scope=[people.legal.pk, people.sales.pk])
    conversation = Conversation.objects.get()
    library.groups.remove(Group.objects.get(name="Sales"))
    ask(library, conversation)
    record = QueryRecord.objects.order_by("id").last()
    assert record.scope == [{"id": people.legal.pk, "name": "Legal"}]
    assert searched(record) == {people.legal.pk}
    page = login(library).get(reverse("chat:conversation", args=[conversation.pk]))
    assert '<p class="muted" id="scope-names">Legal</p>' in page.content.decode()
    assert "Sales" not in page.content.decode()
    # The stored pick is not trusted: with Legal revoked too nothing is searched.
    library.groups.clear()
    events = ask(library, conversation)
    assert "found nothing" in answer_text(events)
    assert QueryRecord.objects.order_by("id").last().outcome == "denied"


def test_the_sidebar_names_what_is_searched(people, library) -> None:
    client = login(library)
    page = client.get(reverse("chat:index")).content.decode()
    assert '<p class="muted" id="scope-names">Legal, Sales</p>' in page
    assert page.count('form="ask" checked') == 2
    conversation = Conversation.objects.create(user=library, scope=[people.sales.pk])
    page = client.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert '<p class="muted" id="scope-names">Sales</p>' in page
    assert f'value="{people.sales.pk}" checked' in page
    assert f'value="{people.legal.pk}" checked' not in page


def test_the_owner_changes_the_scope_and_it_is_audited(people, library, fake_llm) -> None:
    ask(library, scope=[people.legal.pk])
    conversation = Conversation.objects.get()
    url = reverse("chat:scope", args=[conversation.pk])
    response = login(library).post(url, {"scope": [people.sales.pk]})
    assert response.status_code == 302
    assert response.url == reverse("chat:conversation", args=[conversation.pk])
    conversation.refresh_from_db()
    assert conversation.scope == [people.sales.pk]
    event = AuditEvent.objects.get(action=AuditEvent.Action.SCOPE_CHANGED)
    assert event.target_id == str(conversation.pk) and event.actor_username == "both"
    assert event.detail == {
        "before": [{"id": people.legal.pk, "name": "Legal"}],
        "after": [{"id": people.sales.pk, "name": "Sales"}],
    }
    ask(library, conversation)
    assert searched(QueryRecord.objects.order_by("id").last()) == {people.sales.pk}
    # Saving the same scope again changes nothing and records nothing.
    login(library).post(url, {"scope": [people.sales.pk]})
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SCOPE_CHANGED).count() == 1


def test_a_scope_change_ignores_and_records_unreadable_collections(people) -> None:
    conversation = Conversation.objects.create(user=people.teammate, scope=[people.legal.pk])
    url = reverse("chat:scope", args=[conversation.pk])
    login(people.teammate).post(url, {"scope": [people.sales.pk, people.legal.pk]})
    conversation.refresh_from_db()
    assert conversation.scope == [people.legal.pk]
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SCOPE_CHANGED).exists()
    assert denied_events() == [
        {
            "reason": "unreadable collections ignored",
            "collections": [people.sales.pk],
            "requested": [people.legal.pk, people.sales.pk],
            "effective": [people.legal.pk],
        }
    ]


def test_none_ticked_searches_everything_readable(people) -> None:
    conversation = Conversation.objects.create(user=people.teammate, scope=[])
    login(people.teammate).post(reverse("chat:scope", args=[conversation.pk]), {})
    conversation.refresh_from_db()
    assert conversation.scope is None
    event = AuditEvent.objects.get(action=AuditEvent.Action.SCOPE_CHANGED)
    assert event.detail["after"] == [{"id": people.legal.pk, "name": "Legal"}]


def test_only_the_owner_changes_a_conversations_scope(people) -> None:
    conversation = Conversation.objects.create(user=people.teammate, scope=[people.legal.pk])
    url = reverse("chat:scope", args=[conversation.pk])
    admin = make_user("admin", is_superuser=True)
    for stranger in (people.outsider, people.owner, admin):
        assert login(stranger).post(url, {"scope": [people.sales.pk]}).status_code == 404
        assert login(stranger).post(url, {}).status_code == 404
    conversation.refresh_from_db()
    assert conversation.scope == [people.legal.pk]
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SCOPE_CHANGED).exists()
    denied = AuditEvent.objects.filter(action=AuditEvent.Action.ACCESS_DENIED)
    assert {e.target_id for e in denied} == {str(conversation.pk)}
    assert login(people.teammate).get(url).status_code == 405


def test_a_scope_that_is_not_a_list_of_ids_is_refused(people) -> None:
    conversation = Conversation.objects.create(user=people.teammate)
    url = reverse("chat:scope", args=[conversation.pk])
    assert login(people.teammate).post(url, {"scope": ["all"]}).status_code == 400
    response = login(people.teammate).post(
        reverse("chat:ask_new"), {"question": "Hi?", "scope": "²"}
    )
    assert response.status_code == 400
    assert not Conversation.objects.exclude(pk=conversation.pk).exists()
