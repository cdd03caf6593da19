"""Ingestion through HTTP, a real broker and a real Celery worker."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ingestion import index
from ingestion.models import Document
from tests.conftest import login, wait_for_documents
from tests.factories import make_docx, make_pdf, make_pptx, make_xlsx

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]


def files() -> list[SimpleUploadedFile]:
    return [
        SimpleUploadedFile("policy.pdf", make_pdf(["Intro page.", "Refunds take 14 days."])),
        SimpleUploadedFile("memo.docx", make_docx(["The board meets on Tuesdays."])),
        SimpleUploadedFile("page.html", b"<h1>Parking</h1><p>Level -2 is for visitors.</p>"),
        SimpleUploadedFile("notes.md", b"# Notes\n\nThe wifi password rotates monthly."),
        SimpleUploadedFile("plain.txt", "Café opens at 7:30.".encode("cp1252")),
        SimpleUploadedFile("prices.xlsx", make_xlsx({"Prices": [["Item", "Price"], ["Tea", 3]]})),
        SimpleUploadedFile("deck.pptx", make_pptx([("Budget", "Travel is capped.", "Notes.")])),
        SimpleUploadedFile("broken.pdf", b"%PDF-1.4 this is not really a pdf"),
    ]


def test_uploaded_files_are_ingested_by_the_worker(people, celery_worker) -> None:
    client = login(people.owner)
    started = time.monotonic()
    response = client.post(reverse("ingestion:upload", args=[people.legal.pk]), {"files": files()})
    assert response.status_code == 302
    assert time.monotonic() - started < 5  # the request only stores and enqueues
    documents = list(Document.objects.filter(collection=people.legal).order_by("id"))
    assert len(documents) == 8
    wait_for_documents(*documents)

    by_name = {d.original_name: d for d in documents}
    broken = by_name.pop("broken.pdf")
    assert broken.status == Document.Status.FAILED
    assert "could not be read" in broken.error
    for document in by_name.values():
        assert document.status == Document.Status.READY, (document, document.error)
        assert document.chunks > 0
        assert index.count(document.pk) == document.chunks
    assert by_name["policy.pdf"].pages == 2
    [hit] = index.search("How long do refunds take?", [people.legal.pk], 1)
    assert (hit.document_id, hit.page) == (by_name["policy.pdf"].pk, 2)


def test_reingest_and_delete_go_through_the_worker(people, celery_worker) -> None:
    """Reliability #6: after the delete, a count of the document's points is 0."""
    client = login(people.owner)
    client.post(
        reverse("ingestion:upload", args=[people.legal.pk]),
        {"files": [SimpleUploadedFile("a.txt", b"Holidays are announced in January.")]},
    )
    document = Document.objects.get(collection=people.legal)
    wait_for_documents(document)
    assert document.status == Document.Status.READY

    client.post(reverse("ingestion:reingest", args=[document.pk]))
    document.refresh_from_db()
    wait_for_documents(document)
    assert document.status == Document.Status.READY
    assert document.attempts == 1
    assert index.count(document.pk) == document.chunks

    client.post(reverse("ingestion:document_delete", args=[document.pk]))
    assert not Document.objects.filter(pk=document.pk).exists()
    assert index.count(document.pk) == 0


def test_the_collection_page_polls_only_while_work_is_running(people, celery_worker) -> None:
    client = login(people.owner)
    client.post(
        reverse("ingestion:upload", args=[people.legal.pk]),
        {"files": [SimpleUploadedFile("a.txt", b"Lunch is at noon.")]},
    )
    url = reverse("ingestion:collection", args=[people.legal.pk])
    document = Document.objects.get(collection=people.legal)
    wait_for_documents(document)
    partial = client.get(url, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert b"<html" not in partial.content  # the htmx request gets the partial alone
    assert b"Ready" in partial.content
    assert b"hx-trigger" not in partial.content  # finished: polling stops
