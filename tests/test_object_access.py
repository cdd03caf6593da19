"""Owner/outsider sweep: every route with an object id answers its owner and 404s everyone else."""

import pytest
from django.urls import reverse

from assistant.models import Conversation
from ingestion.models import Document
from tests.conftest import login
from tests.factories import make_document, make_user


@pytest.fixture
def objects(people):
    document = make_document(people.legal, "a.txt", b"Legal text")
    conversation = Conversation.objects.create(user=people.teammate, title="Mine")
    return document, conversation


def test_readers_get_read_routes_and_outsiders_get_404(people, objects) -> None:
    """Reliability #4."""
    document, conversation = objects
    # The teammate reads the collection and owns the conversation; the outsider does neither.
    for url in [
        reverse("ingestion:collection", args=[people.legal.pk]),
        reverse("ingestion:document_file", args=[document.pk]),
        reverse("chat:conversation", args=[conversation.pk]),
    ]:
        assert login(people.teammate).get(url).status_code == 200, url
        assert login(people.outsider).get(url).status_code == 404, url
    # The collection's manager may read the collection, but not the employee's conversation.
    url = reverse("chat:conversation", args=[conversation.pk])
    assert login(people.owner).get(url).status_code == 404


@pytest.mark.parametrize("route", ["reingest", "document_delete"])
def test_only_managers_change_documents(people, objects, route: str) -> None:
    """Reliability #4."""
    document, _ = objects
    url = reverse(f"ingestion:{route}", args=[document.pk])
    for stranger in (people.teammate, people.outsider):
        assert login(stranger).post(url).status_code == 404
        assert Document.objects.get(pk=document.pk).status == Document.Status.QUEUED
    assert login(people.owner).post(url).status_code == 302


def test_only_managers_upload(people) -> None:
    """Reliability #4."""
    url = reverse("ingestion:upload", args=[people.legal.pk])
    for stranger in (people.teammate, people.outsider):
        assert login(stranger).post(url, {}).status_code == 404
    assert login(people.owner).post(url, {}).status_code == 302


@pytest.mark.parametrize("route", ["rename", "delete", "ask"])
def test_conversations_are_private(people, objects, route: str) -> None:
    """Reliability #4, #13: another's conversation is a 404, whoever asks."""
    _, conversation = objects
    url = reverse(f"chat:{route}", args=[conversation.pk])
    data = {"title": "Stolen", "question": "What did they ask?"}
    for stranger in (people.outsider, people.owner, make_user("admin", is_superuser=True)):
        assert login(stranger).post(url, data).status_code == 404
    conversation.refresh_from_db()
    assert conversation.title == "Mine"
    rename = reverse("chat:rename", args=[conversation.pk])
    assert login(people.teammate).post(rename, data).status_code == 302
