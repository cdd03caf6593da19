"""Ingestion through HTTP, a real broker and a real Celery worker."""

import threading
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
    deadline = time.monotonic() + 60  # the worker removes it: the web's index key is read-only
    while Document.objects.filter(pk=document.pk).exists():
        assert time.monotonic() < deadline, "the worker did not remove the deleted document"
        time.sleep(0.2)
    assert index.count(document.pk) == 0
    assert not document.file.storage.exists(document.file.name)


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


def test_the_web_never_writes_to_the_index(people, celery_worker, monkeypatch) -> None:
    """Reliability #8: compose gives the web tier a read-only Qdrant key, so nothing a user does
    through the web may write to the index. Upload, search, delete a document and clear a
    collection: every write reaches the engine from a worker thread, none from the request
    (this) thread, and what was deleted is hidden at once and gone once the worker ran."""
    web = threading.current_thread()
    from_web: list[str] = []
    engine_type = type(index.engine())
    for name in ("upsert", "delete"):
        original = getattr(engine_type, name)

        def guarded(self, *args, _original=original, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            if threading.current_thread() is web:
                from_web.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(engine_type, name, guarded)
    client = login(people.owner)
    upload = [SimpleUploadedFile(f"{n}.txt", b"Parking rule %d applies on level %d." % (n, n))
              for n in range(3)]  # fmt: skip
    client.post(reverse("ingestion:upload", args=[people.legal.pk]), {"files": upload})
    documents = list(Document.objects.filter(collection=people.legal))
    wait_for_documents(*documents)
    assert all(d.status == Document.Status.READY for d in documents)
    first, *rest = documents

    client.post(reverse("ingestion:document_delete", args=[first.pk]))
    assert first.pk not in {h.document_id for h in index.search("parking", [people.legal.pk], 5)}
    client.post(reverse("ingestion:collection_clear", args=[people.legal.pk]))
    assert index.search("parking rule", [people.legal.pk], 5) == []  # hidden before removal
    deadline = time.monotonic() + 60
    while Document.objects.filter(collection=people.legal).exists():
        assert time.monotonic() < deadline, "the worker did not remove the deleted documents"
        time.sleep(0.2)
    assert [index.count(d.pk) for d in documents] == [0, 0, 0]
    assert from_web == []
