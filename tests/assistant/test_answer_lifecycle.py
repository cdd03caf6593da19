"""An answer's lifecycle: status while working, stop, regenerate, edit and resend, copy."""

import json
import threading
import time
from collections.abc import Iterator

import pytest
from django.urls import reverse

from assistant import audit, chat
from assistant.models import AuditEvent, Conversation, QueryRecord
from tests.conftest import login, read_events
from tests.factories import ingest_now, make_auditor, make_document, make_pdf

pytestmark = pytest.mark.embedded

QUESTION = "How long do refunds take?"


@pytest.fixture
def library(people):
    policy = make_document(
        people.legal, "refunds.pdf", make_pdf(["Cover page.", "Refunds take 14 days."])
    )
    ingest_now(policy.pk)
    return policy


def ask(user, question: str = QUESTION, conversation: Conversation | None = None):
    url = reverse("chat:ask", args=[conversation.pk]) if conversation else reverse("chat:ask_new")
    return read_events(login(user).post(url, {"question": question}))


def tokens_of(events: list[tuple[str, dict]]) -> str:
    return "".join(data["text"] for name, data in events if name == "token")


def events_as_they_come(response) -> Iterator[tuple[str, dict]]:
    buffer = b""
    for chunk in response.streaming_content:
        buffer += chunk
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            name, _, data = frame.decode().partition("\ndata: ")
            yield name.removeprefix("event: "), json.loads(data)


def test_the_status_names_the_collections_searched_then_says_writing(
    people, library, fake_llm
) -> None:
    events = ask(people.teammate)
    statuses = [data for name, data in events if name == "status"]
    assert statuses == [
        {"phase": "searching", "text": "Searching Legal…"},
        {"phase": "writing", "text": "Writing…"},
    ]
    record = QueryRecord.objects.get()
    assert ("record", {"id": record.pk, "stop_url": f"/chat/answers/{record.pk}/stop/"}) in events
    # Both come before the first token; the answer page keeps them out of the answer's text.
    names = [name for name, _ in events]
    assert names.index("status", 2) < names.index("token")
    assert tokens_of(events) == "Employees get 27 days of leave [1]."


@pytest.mark.django_db(transaction=True)  # the model's connection is really closed
def test_stop_ends_the_model_request_and_keeps_the_partial_answer(
    people, library, fake_llm
) -> None:
    fake_llm.tokens = [f"word{i} " for i in range(200)]
    fake_llm.token_delay = 0.02
    response = login(people.teammate).post(reverse("chat:ask_new"), {"question": QUESTION})
    events = events_as_they_come(response)
    shown = []
    for name, data in events:
        if name == "record":
            stop_url = data["stop_url"]
        if name == "token":
            shown.append(data["text"])
            if len(shown) == 3:
                assert login(people.teammate).post(stop_url).status_code == 204
                break
    rest = list(events)
    assert fake_llm.disconnected.wait(5), "the model server kept generating"
    assert rest[-1][0] == "done" and rest[-1][1]["outcome"] == "stopped"
    assert "this answer is incomplete" in rest[-1][1]["html"]
    shown += [data["text"] for name, data in rest if name == "token"]
    assert 3 <= len(shown) < 20

    record = QueryRecord.objects.get()
    assert record.outcome == QueryRecord.Outcome.STOPPED and record.error == ""
    assert record.answer == "".join(shown) == Conversation.objects.get().messages.last().content
    assert audit.verify()[1] is None


def test_stop_before_the_first_token_ends_the_model_request_at_once(
    people, library, fake_llm
) -> None:
    """The model has not sent a token yet (a long prompt, a queue): Stop still ends the
    request within a poll or two, not at the first token or LLM_READ_TIMEOUT; the outcome is
    `stopped`, with an empty answer."""
    fake_llm.first_token_delay = 30
    response = login(people.teammate).post(reverse("chat:ask_new"), {"question": QUESTION})
    events = events_as_they_come(response)
    for name, data in events:
        if name == "status" and data.get("phase") == "writing":
            break
    started = time.monotonic()
    # The Stop button's view (tested above) sets this flag, from another thread or process.
    threading.Timer(0.3, chat.stop, args=[QueryRecord.objects.get()]).start()
    rest = list(events)
    assert time.monotonic() - started < 5
    assert fake_llm.disconnected.wait(5), "the model server was not told"
    assert rest[-1][0] == "done" and rest[-1][1]["outcome"] == "stopped"
    record = QueryRecord.objects.get()
    assert record.outcome == QueryRecord.Outcome.STOPPED and record.error == ""
    assert record.first_token_ms is None


def test_only_the_asker_can_stop_an_answer(people, library, fake_llm) -> None:
    ask(people.teammate)
    record = QueryRecord.objects.get()
    url = reverse("chat:stop", args=[record.pk])
    assert login(people.outsider).post(url).status_code == 404
    assert login(people.owner).post(url).status_code == 404
    assert login(people.teammate).get(url).status_code == 405
    assert not chat.stop_requested(record.pk)
    assert login(people.teammate).post(url).status_code == 204
    assert chat.stop_requested(record.pk)


def test_regenerate_asks_again_in_place_of_the_answer_linked_to_the_first(
    people, library, fake_llm
) -> None:
    ask(people.teammate)
    conversation = Conversation.objects.get()
    first = QueryRecord.objects.get()
    fake_llm.tokens = ["Refunds take ", "14 days [1]."]
    url = reverse("chat:regenerate", args=[conversation.pk])
    events = read_events(login(people.teammate).post(url))
    assert events[-1][0] == "done" and "14 days" in tokens_of(events)

    second = QueryRecord.objects.exclude(pk=first.pk).get()
    assert second.regenerates_ref == first.pk and second.edits_ref is None
    assert second.question == first.question and second.conversation_ref == conversation.pk
    # The first answer is not in the conversation the model sees, nor shown any more.
    assert second.prompt == first.prompt
    contents = [(m.role, m.content) for m in conversation.messages.all()]
    assert contents == [("user", QUESTION), ("assistant", "Refunds take 14 days [1].")]
    assert audit.verify()[1] is None
    page = login(people.teammate).get(reverse("chat:conversation", args=[conversation.pk]))
    assert "Employees get" not in page.content.decode()
    # The auditor sees the link, on the record's page and in the export.
    auditor = login(make_auditor())
    shown = auditor.get(reverse("audit:record", args=[second.pk])).content.decode()
    assert f'regenerates <a href="{reverse("audit:record", args=[first.pk])}">' in shown
    export = auditor.get(reverse("audit:export", args=["jsonl"])).streaming_content
    exported = [json.loads(line) for line in b"".join(export).splitlines()]
    assert [r["regenerates_ref"] for r in exported] == [first.pk, None]


def test_an_outsider_cannot_regenerate_edit_or_copy(people, library, fake_llm) -> None:
    ask(people.teammate)
    conversation, record = Conversation.objects.get(), QueryRecord.objects.get()
    outsider = login(people.outsider)
    assert outsider.post(reverse("chat:regenerate", args=[conversation.pk])).status_code == 404
    edit = reverse("chat:edit", args=[conversation.pk])
    assert outsider.post(edit, {"question": "Mine?"}).status_code == 404
    assert outsider.post(reverse("chat:copied", args=[record.pk])).status_code == 404
    assert QueryRecord.objects.count() == 1 and conversation.messages.count() == 2
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.ANSWER_COPIED).exists()


def test_edit_and_resend_replaces_the_last_question_as_a_new_linked_turn(
    people, library, fake_llm
) -> None:
    ask(people.teammate, "What is the refund policy?")
    conversation = Conversation.objects.get()
    ask(people.teammate, "How long do refnds tke?", conversation)
    typo = QueryRecord.objects.order_by("-id").first()
    url = reverse("chat:edit", args=[conversation.pk])
    assert login(people.teammate).post(url, {"question": "  "}).status_code == 400
    events = read_events(login(people.teammate).post(url, {"question": QUESTION}))
    assert events[-1][0] == "done"

    edited = QueryRecord.objects.order_by("-id").first()
    assert edited.edits_ref == typo.pk and edited.regenerates_ref is None
    assert edited.question == QUESTION
    questions = [m.content for m in conversation.messages.filter(role="user")]
    assert questions == ["What is the refund policy?", QUESTION]
    sent = json.dumps(fake_llm.requests[-1]["messages"])
    assert "What is the refund policy?" in sent and "refnds" not in sent
    assert audit.verify()[1] is None


def test_copying_an_answer_is_audited(people, library, fake_llm) -> None:
    ask(people.teammate)
    record = QueryRecord.objects.get()
    response = login(people.teammate).post(reverse("chat:copied", args=[record.pk]))
    assert response.status_code == 204
    event = AuditEvent.objects.get(action=AuditEvent.Action.ANSWER_COPIED)
    assert (event.actor_username, event.target_type, event.target_id) == (
        "teammate",
        "assistant.queryrecord",
        str(record.pk),
    )


def test_links_are_hashed_when_set_and_unlinked_records_keep_their_hash(
    people, library, fake_llm
) -> None:
    ask(people.teammate)
    conversation = Conversation.objects.get()
    read_events(login(people.teammate).post(reverse("chat:regenerate", args=[conversation.pk])))
    first, second = QueryRecord.objects.order_by("id")
    # An unlinked record hashes exactly as every record did before links existed (with the
    # model policy that every record now has).
    origin = [f for f, d in audit.RECORD_ORIGIN_DEFAULTS.items() if getattr(first, f) != d]
    assert origin == ["policy"]
    before_links = {f: getattr(first, f) for f in (*audit.RECORD_FIELDS, *origin)}
    body = {"table": "assistant.queryrecord", "seq": first.seq, "prev": first.prev_hash}
    body |= {"content": first.content_hash, "fields": before_links}
    assert first.hash == audit.sha256(audit.canonical(body))
    # A link set, changed or cleared afterwards no longer matches the row's hash.
    assert audit.row_hash(second) == second.hash
    for forged in (None, second.pk + 1):
        second.regenerates_ref = forged
        assert audit.row_hash(second) != second.hash
    first.edits_ref = second.pk
    assert audit.row_hash(first) != first.hash
