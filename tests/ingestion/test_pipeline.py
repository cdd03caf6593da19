from django.test import override_settings

from ingestion import index, pipeline
from ingestion.models import Document
from ingestion.parsing import Page
from tests.factories import make_collection, make_document


def test_a_finished_document_is_not_processed_again(db) -> None:  # noqa: ANN001
    document = make_document(make_collection("C"), "a.txt", b"Some words about lunch.")
    pipeline.ingest(document.pk)
    pipeline.ingest(document.pk)  # a duplicate delivery
    document.refresh_from_db()
    assert document.status == Document.Status.READY
    assert document.attempts == 1
    assert index.count(document.pk) == document.chunks


def test_a_redelivered_document_resumes_and_ends_with_exact_points(db) -> None:  # noqa: ANN001
    document = make_document(make_collection("C"), "a.txt", b"Text. " * 400)
    # As if a worker died mid-task: claimed, half the points written, never finished.
    Document.objects.filter(pk=document.pk).update(status=Document.Status.PARSING, attempts=1)
    pipeline.ingest(document.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.READY
    assert document.chunks > 1
    assert index.count(document.pk) == document.chunks


@override_settings(INGEST_MAX_ATTEMPTS=3)
def test_a_document_that_keeps_killing_workers_ends_failed(db) -> None:  # noqa: ANN001
    document = make_document(make_collection("C"), "a.txt", b"poison")
    Document.objects.filter(pk=document.pk).update(status=Document.Status.PARSING, attempts=3)
    pipeline.ingest(document.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert "3 attempts" in document.error


def test_chunks_fit_the_embedder_window(db) -> None:  # noqa: ANN001
    pages = [Page(1, "A sentence about compliance rules. " * 300)]
    chunks = pipeline.chunk(pages)
    assert len(chunks) > 5
    assert max(index.count_tokens(c.text) for c in chunks) <= 256
    assert [c.chunk_no for c in chunks] == list(range(len(chunks)))


def test_a_deleted_document_leaves_no_points_behind(db) -> None:  # noqa: ANN001
    document = make_document(make_collection("C"), "a.txt", b"Words.")
    pk = document.pk
    Document.objects.filter(pk=pk).delete()
    pipeline.ingest(pk)
    assert index.count(pk) == 0
