"""The chat endpoint, with the LLM faked at the HTTP edge (the live test uses the real vLLM)."""

import pytest
from django.urls import reverse

from assistant.models import Conversation, Message, QueryRecord
from ingestion import index
from tests.conftest import login, read_events
from tests.factories import ingest_now, make_document, make_pdf, make_user

pytestmark = pytest.mark.embedded

QUESTION = "How long do refunds take?"


@pytest.fixture
def library(people):
    """Legal holds the refunds policy (page 2); Sales holds a competing, secret answer."""
    policy = make_document(
        people.legal, "refunds.pdf", make_pdf(["Cover page.", "Refunds take 14 days."])
    )
    secret = make_document(people.sales, "sales.txt", b"SECRET-CANARY: refunds take 3 days.")
    for document in (policy, secret):
        ingest_now(document.pk)
    return policy, secret


def ask(user, question: str = QUESTION, conversation: Conversation | None = None, **extra):
    url = reverse("chat:ask", args=[conversation.pk]) if conversation else reverse("chat:ask_new")
    response = login(user).post(url, {"question": question, **extra})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    return read_events(response)


def test_an_answer_streams_with_citations_and_is_recorded(people, library, fake_llm) -> None:
    policy, _ = library
    events = ask(people.teammate)
    names = [name for name, _ in events]
    assert names == ["conversation", "status", "record", "status", *["token"] * 3, "done"]
    assert "".join(data["text"] for name, data in events if name == "token") == (
        "Employees get 27 days of leave [1]."
    )
    html = events[-1][1]["html"]
    assert f'href="{reverse("ingestion:document_file", args=[policy.pk])}#page=2"' in html
    assert 'class="cite"' in html and "Refunds take 14 days." in html

    record = QueryRecord.objects.get()
    assert record.outcome == QueryRecord.Outcome.ANSWERED
    assert record.username == "teammate" and record.question == QUESTION
    assert record.scope == [{"id": people.legal.pk, "name": "Legal"}]
    assert record.answer == "Employees get 27 days of leave [1]."
    assert record.retrieved[0]["document_id"] == policy.pk
    assert record.retrieved[0]["page"] == 2
    assert {"point_id", "score", "document_sha256", "chunk_no", "text"} <= set(record.retrieved[0])
    assert record.model and record.params["max_tokens"] and record.latency_ms is not None
    assert record.prompt == fake_llm.requests[0]["messages"]
    conversation = Conversation.objects.get()
    assert [m.role for m in conversation.messages.all()] == ["user", "assistant"]


def test_the_query_record_exists_before_the_first_token(people, library, fake_llm) -> None:
    """Reliability #31: the audit record is committed before the first token reaches the user."""
    response = login(people.teammate).post(reverse("chat:ask_new"), {"question": QUESTION})
    chunks = iter(response.streaming_content)
    assert b"event: conversation" in next(chunks)
    assert b"event: status" in next(chunks)  # searching
    assert not QueryRecord.objects.exists()
    assert b"event: record" in next(chunks)
    assert QueryRecord.objects.get().outcome == QueryRecord.Outcome.PENDING
    list(chunks)
    assert QueryRecord.objects.get().outcome == QueryRecord.Outcome.ANSWERED


def test_retrieval_scope_ignores_anything_the_client_sends(people, library, fake_llm) -> None:
    _, secret = library
    events = ask(
        people.teammate,
        "SECRET-CANARY refunds",
        collection_id=people.sales.pk,
        collection_ids=[people.sales.pk],
        filter="{}",
        document_id=secret.pk,
    )
    record = QueryRecord.objects.get()
    assert [c["id"] for c in record.scope] == [people.legal.pk]
    assert all(r["collection_id"] == people.legal.pk for r in record.retrieved)
    prompt = str(fake_llm.requests[0]["messages"])
    assert "SECRET-CANARY" not in prompt.replace("SECRET-CANARY refunds", "")
    assert "SECRET-CANARY: refunds" not in events[-1][1]["html"]


def test_an_empty_scope_answers_without_qdrant_or_the_model(db, fake_llm, monkeypatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("Qdrant must not be queried for an empty scope")

    monkeypatch.setattr(index, "search", forbidden)
    events = ask(make_user("loner"))
    assert "found nothing" in events[3][1]["text"]
    assert events[-1][0] == "done"
    assert fake_llm.requests == []
    record = QueryRecord.objects.get()
    assert (record.outcome, record.scope, record.retrieved) == ("denied", [], [])


def test_nothing_found_in_scope_is_refused_without_the_model(people, fake_llm) -> None:
    events = ask(people.teammate)  # Legal is granted but holds no document yet
    assert "found nothing" in events[3][1]["text"]
    assert fake_llm.requests == []
    record = QueryRecord.objects.get()
    assert (record.outcome, [c["name"] for c in record.scope]) == ("refused", ["Legal"])


def test_the_server_sets_every_generation_parameter(people, library, fake_llm, settings) -> None:
    """Reliability #33: model, max_tokens and temperature sent by the client are ignored; the
    server's values reach the model."""
    ask(people.teammate, model="gpt-evil", max_tokens=99999, temperature=2)
    request = fake_llm.requests[0]
    assert request["model"] == settings.LLM_MODEL
    assert request["max_tokens"] == settings.LLM_MAX_TOKENS
    assert request["temperature"] == settings.LLM_TEMPERATURE


def test_follow_up_questions_carry_the_conversation(people, library, fake_llm) -> None:
    ask(people.teammate)
    conversation = Conversation.objects.get()
    fake_llm.completion = "How long do refunds of damaged goods take?"  # the query rewrite
    ask(people.teammate, "And for damaged goods?", conversation=conversation)
    messages = fake_llm.requests[-1]["messages"]
    assert messages[1] == {"role": "user", "content": QUESTION}
    assert messages[2] == {"role": "assistant", "content": "Employees get 27 days of leave [1]."}
    assert messages[-1]["content"].endswith("And for damaged goods?")
    assert conversation.messages.count() == 4


def test_model_output_is_sanitised(people, library, fake_llm) -> None:
    fake_llm.tokens = [
        "<script>alert(1)</script> ",
        "![x](http://evil.example/pixel.png) ",
        "[click](http://evil.example/) **bold** [1] [9]",
    ]
    html = ask(people.teammate)[-1][1]["html"]
    assert "<script" not in html and "<img" not in html
    assert "evil.example" not in html.replace("http://evil.example/", "")
    assert 'href="http://evil.example' not in html
    assert "<strong>bold</strong>" in html
    assert 'class="cite"' in html and "[9]</a>" not in html  # no link to a source that is not there


@pytest.mark.parametrize(
    ("mode", "message"),
    [("error", "HTTP 500"), ("hang", "did not answer in time")],
)
def test_model_failures_are_explained_and_recorded(
    people, library, fake_llm, mode, message
) -> None:
    """Reliability #30: a model that errors or hangs gets a graceful error within the read timeout,
    recorded as an error, with no answer stored."""
    fake_llm.mode = mode
    events = ask(people.teammate)
    assert events[-1][0] == "error"
    assert message in events[-1][1]["message"]
    record = QueryRecord.objects.get()
    assert record.outcome == QueryRecord.Outcome.ERROR and message in record.error
    assert not Message.objects.filter(role="assistant").exists()


def test_a_model_server_that_is_down_is_explained(people, library, settings) -> None:
    """Reliability #30: a stopped model server gets a plain error message, not a 500."""
    from tests.conftest import free_port

    settings.LLM_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"
    events = ask(people.teammate)
    assert events[-1] == (
        "error",
        {"message": "The language model server cannot be reached. Please try again in a moment."},
    )


def test_no_answer_is_given_when_the_record_cannot_be_written(
    people, library, fake_llm, monkeypatch
) -> None:
    """Reliability #31: when the audit record cannot be written, no answer is given and the model is
    never asked."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit database unavailable")

    monkeypatch.setattr(QueryRecord.objects, "create", broken)
    events = ask(people.teammate)
    assert [name for name, _ in events] == ["conversation", "status", "error"]
    assert fake_llm.requests == []


def test_revoked_citations_are_withheld_when_viewed_later(people, library, fake_llm) -> None:
    ask(people.teammate)
    conversation = Conversation.objects.get()
    url = reverse("chat:conversation", args=[conversation.pk])
    assert "Refunds take 14 days." in login(people.teammate).get(url).content.decode()
    people.teammate.groups.clear()
    page = login(people.teammate).get(url).content.decode()
    assert "Refunds take 14 days." not in page
    assert "Source withheld" in page
    assert "refunds.pdf" not in page and "refunds</a>" not in page


def test_conversations_can_be_renamed_and_deleted_by_their_owner(people, library, fake_llm) -> None:
    ask(people.teammate)
    conversation = Conversation.objects.get()
    client = login(people.teammate)
    client.post(reverse("chat:rename", args=[conversation.pk]), {"title": "Refunds"})
    assert Conversation.objects.get().title == "Refunds"
    assert "Refunds" in client.get(reverse("chat:index")).content.decode()
    assert client.post(reverse("chat:delete", args=[conversation.pk])).status_code == 302
    assert not Conversation.objects.exists()
    assert QueryRecord.objects.count() == 1  # the audit record outlives the conversation


def test_an_empty_question_is_refused(people) -> None:
    response = login(people.teammate).post(reverse("chat:ask_new"), {"question": "  "})
    assert response.status_code == 400
    assert not Conversation.objects.exists()


def test_the_chat_page_lists_only_own_conversations(people) -> None:
    Conversation.objects.create(user=people.outsider, title="Outsider secret plans")
    Conversation.objects.create(user=people.teammate, title="My own question")
    page = login(people.teammate).get(reverse("chat:index")).content.decode()
    assert "My own question" in page and "Outsider secret plans" not in page
    assert "Legal" in page and "Sales" not in page  # the scope shown is the user's


def test_a_failing_grounding_check_still_records_the_answer(
    people, library, fake_llm, monkeypatch
) -> None:
    from assistant import grounding

    def broken(*args: object) -> None:
        raise RuntimeError("grounding bug")

    monkeypatch.setattr(grounding, "check", broken)
    events = ask(people.teammate)
    assert events[-1][0] == "done"
    record = QueryRecord.objects.get()
    assert record.outcome == QueryRecord.Outcome.ANSWERED
    assert record.answer == "Employees get 27 days of leave [1]."
    assert record.grounding["check_failed"] is True


@pytest.mark.django_db(transaction=True)  # closing the response closes the connection
def test_closing_the_stream_finalises_the_record_whoever_holds_the_answer(
    people, library, fake_llm, monkeypatch
) -> None:
    from assistant import chat

    held = []  # another reference to the answer generator: reference counting cannot close it
    answer = chat.answer

    def holding(*args: object) -> object:
        held.append(answer(*args))  # type: ignore[arg-type]
        return held[-1]

    monkeypatch.setattr(chat, "answer", holding)
    response = login(people.teammate).post(reverse("chat:ask_new"), {"question": QUESTION})
    chunks = iter(response.streaming_content)
    # The conversation, searching, the record, writing, the first token: the browser goes away.
    [next(chunks) for _ in range(5)]
    response.close()
    record = QueryRecord.objects.get()
    assert record.outcome == QueryRecord.Outcome.ERROR
    assert record.answer == "Employees get "  # the part written before the stream closed


def test_a_group_name_with_a_bar_stays_one_group_in_the_record(people, library, fake_llm) -> None:
    from django.contrib.auth.models import Group

    from assistant.audit import trail

    people.teammate.groups.add(Group.objects.create(name="Sales|Legal"))
    ask(people.teammate)
    record = QueryRecord.objects.get()
    assert record.group_names == ["Legal", "Sales|Legal"]
    assert list(trail.query_records({"group": "Sales"})) == []
    assert list(trail.query_records({"group": "Sales|Legal"})) == [record]
