"""The citation panel's partial: one source of one answer, for the conversation's owner only,
re-authorised like the sources list."""

from dataclasses import asdict

import pytest
from django.urls import reverse

from assistant.citations import CONTEXT_CHARS, excerpt
from assistant.models import AuditEvent, Conversation, Message
from ingestion import index, pipeline
from tests.conftest import login
from tests.factories import make_document, make_pdf

pytestmark = pytest.mark.embedded

BEFORE = [f"Clause {i} sets the office hours of team {i} in building {i}." for i in range(20)]
AFTER = [f"Clause {i} sets the parking rules of floor {i} in tower {i}." for i in range(20, 40)]


@pytest.fixture
def answer(people) -> Message:
    """The teammate's answer citing page 2 of the refunds policy, a page longer than a chunk,
    as the chat stores it (the passage found by the real search)."""
    page = "\n".join([*BEFORE, "Refunds take 14 days.", *AFTER])
    policy = make_document(people.legal, "refunds.pdf", make_pdf(["Cover page.", page]))
    pipeline.ingest(policy.pk)
    hits = index.search("How long do refunds take?", [people.legal.pk], 5)
    hit = next(h for h in hits if "Refunds take 14 days." in h.text)
    assert hit.page == 2
    conversation = Conversation.objects.create(user=people.teammate, title="Refunds")
    Message.objects.create(conversation=conversation, role=Message.Role.USER, content="Refunds?")
    return Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content="Refunds take 14 days [1].",
        sources=[{"n": 1, **asdict(hit)}],
    )


def panel_url(message: Message, n: int = 1) -> str:
    return reverse("chat:source", args=[message.pk, n])


def test_the_owner_sees_the_passage_marked_in_its_page_with_links(people, answer) -> None:
    source = answer.sources[0]
    response = login(people.teammate).get(panel_url(answer))
    assert response.status_code == 200
    html = response.content.decode()
    assert "refunds" in html and "Page 2" in html
    mark = html.split('<mark id="citation-passage">')[1].split("</mark>")[0]
    assert "Refunds take 14 days." in mark
    # The page around the chunk is shown too, outside the mark.
    outside = html.replace(mark, "")
    assert any(clause in outside for clause in [*BEFORE, *AFTER])
    page_url = reverse("ingestion:document_page", args=[source["document_id"], 2])
    assert f'href="{page_url}?chunk={source["chunk_no"]}#passage"' in html
    file_url = reverse("ingestion:document_file", args=[source["document_id"]])
    assert f'href="{file_url}#page=2"' in html
    opened = AuditEvent.objects.get(action=AuditEvent.Action.DOCUMENT_OPENED)
    assert opened.actor_username == "teammate" and opened.target_id == str(source["document_id"])
    assert opened.detail["page"] == 2 and opened.detail["citation"] == 1


def test_anyone_but_the_owner_gets_a_404_even_a_reader_of_the_document(people, answer) -> None:
    for user in (people.outsider, people.owner):
        response = login(user).get(panel_url(answer))
        assert response.status_code == 404
        assert "Refunds take 14 days." not in response.content.decode()
    denied = AuditEvent.objects.filter(action=AuditEvent.Action.ACCESS_DENIED)
    assert {e.actor_username for e in denied} == {"outsider", "owner"}
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DOCUMENT_OPENED).exists()
    assert login(people.outsider).get(reverse("chat:source", args=[10**6, 1])).status_code == 404


def test_a_revoked_source_is_withheld(people, answer) -> None:
    people.teammate.groups.clear()
    response = login(people.teammate).get(panel_url(answer))
    html = response.content.decode()
    assert "Source withheld" in html
    assert "Refunds take 14 days." not in html and "refunds" not in html and "Clause" not in html
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DOCUMENT_OPENED).exists()


def test_only_sources_the_answer_has_open(people, answer) -> None:
    client = login(people.teammate)
    assert client.get(panel_url(answer, 99)).status_code == 404
    question = Message.objects.get(role=Message.Role.USER)
    assert client.get(panel_url(question)).status_code == 404


def test_a_panel_needs_a_signed_in_user(people, answer, client) -> None:
    response = client.get(panel_url(answer))
    assert response.status_code in (302, 401)
    assert "Refunds" not in response.content.decode()


def test_the_excerpt_cuts_the_page_at_words_around_the_passage() -> None:
    page = "alpha " * 300 + "THE PASSAGE  here" + " omega" * 300
    found = excerpt(page, "THE PASSAGE here")
    assert found.passage == "THE PASSAGE  here"
    assert found.before.startswith("… alpha") and found.before.endswith("alpha ")
    assert found.after.startswith(" omega") and found.after.endswith("omega …")
    assert len(found.before) <= CONTEXT_CHARS + 2 and len(found.after) <= CONTEXT_CHARS + 2


def test_the_excerpt_is_the_passage_alone_when_the_page_lacks_it() -> None:
    assert excerpt(None, "gone") == excerpt("a page re-ingested since", "gone")
    assert excerpt("short page: gone here.", "gone").before == "short page: "
    assert excerpt(None, "gone").passage == "gone"
