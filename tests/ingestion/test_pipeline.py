import time

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.test import override_settings

from ingestion import index, pipeline, tasks
from ingestion.index import writes
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


def test_a_heading_followed_by_a_long_run_of_spaces_chunks_in_linear_time(db) -> None:  # noqa: ANN001
    pipeline.chunk([Page(1, "# warm up")])  # loads the tokenizer outside the timing
    started = time.monotonic()
    chunks = pipeline.chunk([Page(1, "# a" + " " * 2_000_000 + "x")])
    assert time.monotonic() - started < 1
    assert chunks and chunks[0].heading.startswith("a")


def test_headings_lose_their_closing_hashes(db) -> None:  # noqa: ANN001
    text = "   ## Refunds ##\nFourteen days.\n# C#\nA language.\n#nope\nNot a heading."
    assert [h for h, _ in pipeline.sections(text, "")] == ["Refunds", "C"]


def test_a_document_that_takes_too_long_ends_failed(db, settings) -> None:  # noqa: ANN001
    settings.INGEST_TIME_LIMIT_SECONDS = 0.001
    document = make_document(make_collection("C"), "a.txt", b"Words about lunch. " * 400)
    pipeline.ingest(document.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert document.error == "Ingestion took longer than 0.001 seconds and was stopped."


def test_a_document_stopped_by_the_workers_soft_time_limit_ends_failed(db, monkeypatch) -> None:  # noqa: ANN001
    def stopped(*args: object) -> None:
        raise SoftTimeLimitExceeded()  # as a prefork worker raises it, mid-embedding

    monkeypatch.setattr(writes, "embed", stopped)
    document = make_document(make_collection("C"), "a.txt", b"Words about lunch.")
    tasks.ingest_document(document.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    limit = settings.INGEST_TIME_LIMIT_SECONDS
    assert document.error == f"Ingestion took longer than {limit:g} seconds and was stopped."


def test_the_ingest_task_is_stopped_at_the_time_limit_in_a_prefork_worker() -> None:
    limit = settings.INGEST_TIME_LIMIT_SECONDS
    assert tasks.ingest_document.soft_time_limit == limit
    assert tasks.ingest_document.time_limit > limit  # time to record the failure first
