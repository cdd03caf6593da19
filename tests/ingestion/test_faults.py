"""Faults: a worker killed mid-embedding, a poison document, the broker down, a broken index."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from ingestion import documents, index, pipeline
from ingestion.models import Document
from ingestion.reconcile import reconcile
from tests.conftest import login, wait_for_documents
from tests.factories import make_document, make_stream_pdf

Status = Document.Status
ROOT = Path(__file__).resolve().parents[2]
services = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis") or connection.vendor != "postgresql",
    reason="needs the services profile: PostgreSQL and Redis shared with a separate worker",
)


@contextmanager
def own_queue(name: str) -> Iterator[None]:
    """Tasks go to a queue of this test's own, so the in-process test worker cannot take them."""
    from assistant.celery import app

    app.conf.task_default_queue = name
    app.amqp.__dict__.pop("queues", None)
    try:
        yield
    finally:
        app.conf.task_default_queue = "celery"
        app.amqp.__dict__.pop("queues", None)
        with app.connection_for_write() as conn:
            conn.default_channel.client.delete(name)


def test_reconcile_repairs_a_broken_index(people) -> None:
    """Reliability #28: the index loses a document's points, keeps a deleted one's and a failed
    one's; reconcile reports and repairs each, re-queues what is missing, and a dry run then
    finds 0 mismatches."""
    kept = make_document(people.legal, "kept.txt", b"Kept rule. " * 200)
    emptied = make_document(people.legal, "emptied.txt", b"Emptied rule. " * 200)
    failed = make_document(people.legal, "failed.txt", b"Failed rule.")
    for document in (kept, emptied, failed):
        pipeline.ingest(document.pk)
    # Break it: one document loses its points, a deleted one leaves some, a failed one has some.
    index.delete(emptied.pk)
    index.replace(collection_id=people.legal.pk, document_id=987654, sha256="0" * 64,
                  title="ghost", chunks=[index.Chunk(0, 1, "ghost text")])  # fmt: skip
    Document.objects.filter(pk=failed.pk).update(status=Status.FAILED)
    out = StringIO()
    call_command("reconcile_index", stdout=out)
    assert "orphaned documents repaired: 1" in out.getvalue()
    assert "re-queued: 1" in out.getvalue()
    assert index.count(987654) == 0 and index.count(failed.pk) == 0
    assert Document.objects.get(pk=emptied.pk).status == Status.QUEUED
    pipeline.ingest(emptied.pk)
    emptied.refresh_from_db()
    assert index.count(emptied.pk) == emptied.chunks > 0
    assert index.count(kept.pk) == Document.objects.get(pk=kept.pk).chunks
    out = StringIO()
    call_command("reconcile_index", "--dry-run", stdout=out)
    assert "The index matches the database." in out.getvalue()


@services
@pytest.mark.django_db(transaction=True)
def test_an_upload_survives_the_broker_being_down(people, caplog) -> None:
    """Reliability #27: with the broker unreachable an upload is answered at once (302, no 500), the
    document stays queued in the database and a starting worker re-queues it (services profile)."""
    from assistant.celery import app

    app.conf.broker_write_url = "redis://127.0.0.1:1/0"  # nothing listens there
    app._pool, app.amqp._producer_pool = None, None
    try:
        started = time.monotonic()
        response = login(people.owner).post(
            reverse("ingestion:upload", args=[people.legal.pk]),
            {"files": [SimpleUploadedFile("a.txt", b"Queued while the broker was down.")]},
        )
        assert response.status_code == 302 and time.monotonic() - started < 15
    finally:
        app.conf.broker_write_url = None
        app._pool, app.amqp._producer_pool = None, None
    document = Document.objects.get()
    assert document.status == Status.QUEUED
    assert "stays queued" in caplog.text
    with own_queue("broker-test"), app.connection_for_read() as conn:
        assert documents.requeue_stuck() == 1  # what a worker does when it starts
        assert conn.default_channel.client.llen("broker-test") == 1


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_a_poison_document_fails_and_the_queue_keeps_draining(people, celery_worker) -> None:
    """Reliability #19, #25: a document that fails to parse does not hold up the other queued
    documents."""
    import zlib

    poison = make_stream_pdf(zlib.compress(b"0" * 400_000_000, 9))
    client = login(people.owner)
    client.post(
        reverse("ingestion:upload", args=[people.legal.pk]),
        {
            "files": [
                SimpleUploadedFile("poison.pdf", poison),
                SimpleUploadedFile("fine.txt", b"Fine rule one."),
                SimpleUploadedFile("also.txt", b"Fine rule two."),
            ]
        },
    )
    rows = list(Document.objects.all())
    wait_for_documents(*rows)
    status = {d.original_name: (d.status, d.attempts) for d in rows}
    assert status["poison.pdf"][0] == Status.FAILED and status["poison.pdf"][1] <= 3
    assert status["fine.txt"][0] == status["also.txt"][0] == Status.READY


def start_worker(env: dict[str, str], log: Path, name: str = "worker") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "assistant.celery", "worker", "--pool=solo",
         "--concurrency=1", "--without-mingle", "--without-gossip", "--loglevel=INFO",
         f"--hostname={name}@%h"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def wait_status(document: Document, statuses: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document.refresh_from_db()
        if document.status in statuses:
            return
        time.sleep(0.1)
    raise AssertionError(f"{document} still {document.status} after {timeout} s")


def wait_for_line(log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not logged after {timeout} s")
        time.sleep(0.05)


def wait_for_ping(name: str, timeout: float) -> None:
    from assistant.celery import app

    deadline = time.monotonic() + timeout
    while not app.control.ping(destination=[name], timeout=0.5):
        if time.monotonic() > deadline:
            raise AssertionError(f"worker {name} not answering after {timeout} s")


def stop(worker: subprocess.Popen, sig: int) -> None:
    os.killpg(worker.pid, sig)
    worker.wait(timeout=60)


def worker_env(tmp_path: Path, queue: str) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        # The worker alone opens this shard: Edge admits one process.
        "INDEX_PATH": str(tmp_path / "index"),
        "CELERY_VISIBILITY_TIMEOUT": "5",
        "EMBEDDED_WORKER": "false",
        "CELERY_WORKER_CONCURRENCY": "1",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }


@services
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_embedding_loses_and_duplicates_nothing(people, tmp_path) -> None:
    """Reliability #24, #28: SIGKILL the worker while it embeds a long document; the acknowledged
    batch is in the index after the kill, the redelivered task finishes it with exactly one point
    per chunk and no duplicates, reconcile finds no mismatch (services profile: PostgreSQL and
    Redis)."""
    from assistant.celery import app

    app.control.purge()
    # A short lease: the killed worker's document is taken again soon after the restart.
    env = {**worker_env(tmp_path, "kill-test"), "INGEST_LEASE_SECONDS": "15"}
    with own_queue("kill-test"):
        kill_and_redeliver(people, env, tmp_path)


def kill_and_redeliver(people, env: dict[str, str], tmp_path: Path) -> None:
    text = " ".join(f"Clause {n} sets the rule for case {n * 7}." for n in range(8000))
    login(people.owner).post(
        reverse("ingestion:upload", args=[people.legal.pk]),
        {"files": [SimpleUploadedFile("long.txt", text.encode())]},
    )
    document = Document.objects.get()
    log = tmp_path / "worker.log"
    first = start_worker(env, log)
    try:
        # Killed once the first batch is written and the next is being embedded.
        wait_for_line(log, f"document {document.pk}: 256 of ", timeout=180)
    finally:
        stop(first, signal.SIGKILL)
    document.refresh_from_db()
    assert document.status == Status.EMBEDDING  # killed mid-task: nothing finished it
    # The shard the killed worker was writing loads (its write-ahead log replayed), holding
    # the batch written before the kill. The document is still to be ingested, so reconcile
    # leaves it to the worker: the next run overwrites those points (same ids) and adds the rest.
    with override_settings(INDEX_PATH=tmp_path / "index"):
        assert index.count(document.pk) == 256
        assert reconcile(repair=False).clean
        index.close()
    second = start_worker(env, log)
    try:
        wait_status(document, {Status.READY, Status.FAILED}, timeout=300)
    finally:
        stop(second, signal.SIGTERM)
    assert document.status == Status.READY, (document.error, log.read_text()[-3000:])
    assert document.attempts == 2 and document.chunks > 100

    with override_settings(INDEX_PATH=tmp_path / "index"):
        try:
            assert index.point_counts() == {document.pk: document.chunks}
            chunks = [index.passage(document.pk, n) for n in range(document.chunks)]
            assert all(chunks) and index.passage(document.pk, document.chunks) is None
            assert reconcile(repair=False).clean  # the database and the index agree
        finally:
            index.close()


@services
@pytest.mark.django_db(transaction=True)
def test_two_workers_given_the_same_document_process_it_once(people, tmp_path) -> None:
    """Reliability #26: a second message for a document in hand (as a redelivery sends) reaches a
    second worker, which leaves it to the lease holder: one run, attempts 1 (services profile)."""
    from assistant.celery import app

    app.control.purge()
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    env = worker_env(tmp_path, "twin-test")
    with own_queue("twin-test"):
        workers = [
            # Each its own shard (Edge admits one process); the claim is what is under test.
            start_worker({**env, "INDEX_PATH": str(tmp_path / name)}, log, name)
            for name, log in zip("ab", logs, strict=True)
        ]
        try:
            for name in "ab":
                wait_for_ping(f"{name}@{socket.gethostname()}", timeout=120)
            text = " ".join(f"Clause {n} sets the rule for case {n * 7}." for n in range(8000))
            login(people.owner).post(
                reverse("ingestion:upload", args=[people.legal.pk]),
                {"files": [SimpleUploadedFile("long.txt", text.encode())]},
            )
            document = Document.objects.get()
            documents.enqueue(document.pk)  # a second message, as a restart's requeue sends
            wait_status(document, {Status.READY, Status.FAILED}, timeout=300)
        finally:
            for worker in workers:
                stop(worker, signal.SIGTERM)
    assert document.status == Status.READY and document.attempts == 1, document.error
    processed = [f"document {document.pk}: 256 of" in log.read_text() for log in logs]
    assert sorted(processed) == [False, True], [log.read_text()[-2000:] for log in logs]
    # The other one did get the document, and left it to the lease holder.
    assert "held by another worker" in logs[processed.index(False)].read_text()
