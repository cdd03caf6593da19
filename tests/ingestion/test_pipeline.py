import time
from datetime import timedelta
from unittest import mock

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from ingestion import documents, index, pipeline, tasks
from ingestion.index import writes
from ingestion.models import Document
from ingestion.parsing import Page
from tests.factories import make_collection, make_document


def test_a_finished_document_is_not_processed_again(db) -> None:
    document = make_document(make_collection("C"), "a.txt", b"Some words about lunch.")
    pipeline.ingest(document.pk)
    pipeline.ingest(document.pk)  # a duplicate delivery
    document.refresh_from_db()
    assert document.status == Document.Status.READY
    assert document.attempts == 1
    assert index.count(document.pk) == document.chunks


def test_a_redelivered_document_resumes_and_ends_with_exact_points(db) -> None:
    """Reliability #24: a redelivered document ends with exactly one point per chunk (deterministic
    point ids), whatever the killed run had written."""
    document = make_document(make_collection("C"), "a.txt", b"Text. " * 400)
    # As if a worker died mid-task: claimed, half the points written, never finished.
    Document.objects.filter(pk=document.pk).update(status=Document.Status.PARSING, attempts=1)
    pipeline.ingest(document.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.READY
    assert document.chunks > 1
    assert index.count(document.pk) == document.chunks


@override_settings(INGEST_MAX_ATTEMPTS=3)
def test_a_document_that_keeps_killing_workers_ends_failed(db) -> None:
    document = make_document(make_collection("C"), "a.txt", b"poison")
    Document.objects.filter(pk=document.pk).update(status=Document.Status.PARSING, attempts=3)
    pipeline.ingest(document.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert "3 attempts" in document.error


def test_chunks_fit_the_embedder_window(db) -> None:
    pages = [Page(1, "A sentence about compliance rules. " * 300)]
    chunks = pipeline.chunk(pages)
    assert len(chunks) > 5
    assert max(index.count_tokens(c.text) for c in chunks) <= 256
    assert [c.chunk_no for c in chunks] == list(range(len(chunks)))


@pytest.mark.parametrize("gone", ["row", "deleting"])
def test_a_document_deleted_while_it_is_written_leaves_no_points_behind(
    db, monkeypatch, gone: str
) -> None:
    document = make_document(make_collection("C"), "a.txt", b"Words about lunch. " * 2000)
    written = []
    put = writes.put

    def put_then_delete(*args: object, **kwargs: object) -> list[str]:
        count = put(*args, **kwargs)  # type: ignore[arg-type]
        written.append(index.count(document.pk))
        if gone == "row":
            Document.objects.filter(pk=document.pk).delete()
        else:  # an admin deleted it meanwhile: hidden, its removal not yet run by a worker
            documents.delete(Document.objects.get(pk=document.pk), None)  # type: ignore[arg-type]
        return count

    monkeypatch.setattr(writes, "put", put_then_delete)
    pipeline.ingest(document.pk)
    assert written and written[0] > 0  # points were there when the row went
    assert index.count(document.pk) == 0


def hold(document: Document, owner: str, seconds: float) -> None:
    until = timezone.now() + timedelta(seconds=seconds)
    Document.objects.filter(pk=document.pk).update(
        status=Document.Status.EMBEDDING, attempts=1, lease_owner=owner, lease_until=until
    )


def test_a_document_another_worker_holds_is_left_to_it(db) -> None:
    document = make_document(make_collection("C"), "a.txt", b"Words about lunch.")
    hold(document, "other-worker", 30)
    wait = pipeline.ingest(document.pk)  # a duplicate delivery, or a restart's requeue
    assert 25 < wait <= 30
    document.refresh_from_db()
    assert (document.status, document.attempts, document.lease_owner) == (
        Document.Status.EMBEDDING, 1, "other-worker"
    )  # fmt: skip
    assert index.count(document.pk) == 0
    assert documents.requeue_stuck() == 0  # a worker starting now leaves it alone


def test_a_dead_workers_document_is_taken_once_its_lease_runs_out(db) -> None:
    """Reliability #26: a live lease keeps a second delivery off the document; once the lease runs
    out (its worker is dead) the document is taken again."""
    document = make_document(make_collection("C"), "a.txt", b"Words about lunch.")
    hold(document, "dead-worker", -1)
    with mock.patch.object(documents, "enqueue") as enqueue:
        assert documents.requeue_stuck() == 1
    enqueue.assert_called_once_with(document.pk)
    assert pipeline.ingest(document.pk) == 0
    document.refresh_from_db()
    assert (document.status, document.attempts) == (Document.Status.READY, 2)
    assert document.lease_until is None and index.count(document.pk) == document.chunks


def test_a_worker_whose_lease_was_taken_stops_without_finishing(db, monkeypatch) -> None:
    """Reliability #26: a worker whose lease was taken over stops without writing the final state:
    the final state is a single run's."""
    document = make_document(make_collection("C"), "a.txt", b"Words about lunch. " * 2000)
    monkeypatch.setattr(settings, "INGEST_LEASE_SECONDS", 0.01)  # renews at every step
    put = writes.put

    def taken_over(*args: object, **kwargs: object) -> list[str]:
        hold(document, "faster-worker", 60)  # this worker stalled; another took the document
        return put(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writes, "put", taken_over)
    pipeline.ingest(document.pk)
    document.refresh_from_db()
    assert (document.status, document.lease_owner) == (Document.Status.EMBEDDING, "faster-worker")


def test_reingesting_a_document_whose_file_is_gone_ends_failed(db) -> None:
    document = make_document(make_collection("C"), "a.txt", b"Words about lunch.")
    document.file.delete(save=False)
    pipeline.ingest(document.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert document.error == "The stored file is missing; upload the document again."


def test_a_heading_followed_by_a_long_run_of_spaces_chunks_in_linear_time(db) -> None:
    pipeline.chunk([Page(1, "# warm up")])  # loads the tokenizer outside the timing
    started = time.monotonic()
    chunks = pipeline.chunk([Page(1, "# a" + " " * 2_000_000 + "x")])
    assert time.monotonic() - started < 10  # quadratic: hours; linear: well under a second unloaded
    assert chunks and chunks[0].heading.startswith("a")


def test_headings_lose_their_closing_hashes(db) -> None:
    text = "   ## Refunds ##\nFourteen days.\n# C#\nA language.\n#nope\nNot a heading."
    assert [h for h, _ in pipeline.sections(text, "")] == ["Refunds", "C"]


def test_a_document_that_takes_too_long_ends_failed(db, settings) -> None:
    settings.INGEST_TIME_LIMIT_SECONDS = 0.001
    document = make_document(make_collection("C"), "a.txt", b"Words about lunch. " * 400)
    pipeline.ingest(document.pk)
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert document.error == "Ingestion took longer than 0.001 seconds and was stopped."


def test_a_document_stopped_by_the_workers_soft_time_limit_ends_failed(db, monkeypatch) -> None:
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
