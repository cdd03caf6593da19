"""Faults with real processes: a private redis-server (never the shared one on 6379) as the
broker, and Celery workers as subprocesses sharing the test database (on SQLite, its file).
Each test kills something for real: the worker, or the broker."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from ingestion import index
from ingestion.models import Document
from ingestion.reconcile import reconcile
from tests.conftest import free_port, login
from tests.ingestion.test_faults import kill_and_redeliver, stop, wait_for_line, wait_status

Status = Document.Status
ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]
# The services profile runs these two in tests/ingestion/test_faults.py, on its shared Redis.
sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="tests/ingestion/test_faults.py runs it on PostgreSQL"
)

# A document whose text makes its worker die (as a native crash or the kernel's OOM killer
# would): the worker is started through this, which kills its own process on that text.
KILLER = """
import os, signal, sys
import django
django.setup()
from ingestion import pipeline
chunk = pipeline.chunk
def chunk_or_die(pages, lease=None):
    if any("POISON-PILL" in page.text for page in pages):
        os.kill(os.getpid(), signal.SIGKILL)
    return chunk(pages, lease)
pipeline.chunk = chunk_or_die
from celery.__main__ import main
sys.argv[0] = "celery"
main()
"""


class Redis:
    """A redis-server of this test's own, on a free port, that the test can kill and restart."""

    def __init__(self, folder: Path) -> None:
        self.port, self.folder = free_port(), folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        # Append-only, as docker-compose.yml runs it: queued messages outlive a restart.
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while self.client_or_none() is None:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)

    def client_or_none(self):
        import redis

        try:
            client = redis.Redis(port=self.port, socket_timeout=1)
            client.ping()
            return client
        except redis.ConnectionError:
            return None

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def queued(self) -> int:
        return self.client_or_none().llen("celery")


@pytest.fixture
def redis_broker(tmp_path) -> Iterator[Redis]:
    """This process sends its tasks to the private server too."""
    from assistant.celery import app

    if connection.vendor == "postgresql":
        # The services pass's session worker (tests/conftest.py) runs in this process and shares
        # its broker settings: it would take these tasks itself. tests/ingestion/test_faults.py
        # covers the same faults on PostgreSQL; the embedded pass runs these.
        pytest.skip("runs in the embedded pass; tests/ingestion/test_faults.py covers PostgreSQL")

    redis = Redis(tmp_path)
    redis.start()
    conf = app.conf
    before = conf.broker_url, conf.broker_transport, conf.broker_transport_options
    # No transport named: the URL's (the embedded profile names its folder broker's).
    conf.broker_url, conf.broker_transport = redis.url, None
    conf.broker_transport_options = {"visibility_timeout": 5}
    app._pool, app.amqp._producer_pool = None, None
    try:
        yield redis
    finally:
        conf.broker_url, conf.broker_transport, conf.broker_transport_options = before
        app._pool, app.amqp._producer_pool = None, None
        if redis.process and redis.process.poll() is None:
            redis.kill()


def env_for(redis: Redis, tmp_path: Path, **extra: str) -> dict[str, str]:
    db = connection.settings_dict
    if connection.vendor == "sqlite":  # the test database is a file the worker opens too
        url = f"sqlite:///{db['NAME']}?timeout=20&transaction_mode=IMMEDIATE"
    else:
        credentials = f"{db['USER']}:{db['PASSWORD'] or ''}"
        url = f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": redis.url,
        "CELERY_VISIBILITY_TIMEOUT": "5",
        "EMBEDDED_WORKER": "false",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "INDEX_PATH": str(tmp_path / "index"),  # the worker alone opens this shard
        "INGEST_LEASE_SECONDS": "15",
        **extra,
    }


def start(env: dict[str, str], log: Path, name: str = "worker", killer: bool = False):
    argv = ["-A", "assistant.celery", "worker", "--pool=solo", "--without-mingle",
            "--without-gossip", "--loglevel=INFO", f"--hostname={name}@%h"]  # fmt: skip
    head = [sys.executable, "-c", KILLER] if killer else [sys.executable, "-m", "celery"]
    return subprocess.Popen(
        head + argv, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def upload(people, *files: tuple[str, bytes]) -> list[Document]:
    response = login(people.owner).post(
        reverse("ingestion:upload", args=[people.legal.pk]),
        {"files": [SimpleUploadedFile(name, content) for name, content in files]},
    )
    assert response.status_code == 302
    names = [name for name, _ in files]
    return [Document.objects.get(original_name=name) for name in names]


@sqlite_only
def test_a_worker_killed_mid_embedding_loses_and_duplicates_nothing(
    people, redis_broker, tmp_path
) -> None:
    """Reliability #24, #28: SIGKILL the worker while it embeds a long document (hundreds of
    chunks, written in acknowledged batches of 256). The batch written before the kill is in the
    shard after it (the Edge shard's write-ahead log replayed); acks_late redelivers the task,
    the next worker finishes it: status ready, exactly one point per chunk (deterministic ids,
    no duplicates), and reconcile finds the database and the index agree. Not testable here:
    `docker kill` of a container, and a Qdrant *server* killed mid-upsert (no server binary);
    the shard killed with its writer is that case for the embedded store."""
    kill_and_redeliver(people, env_for(redis_broker, tmp_path), tmp_path)


def test_a_document_that_kills_its_worker_every_time_ends_failed_after_n_deliveries(
    people, redis_broker, tmp_path
) -> None:
    """Reliability #25: a document whose ingestion kills the worker process itself (SIGKILL,
    as the OOM killer would), every time. A supervisor restarts the worker as docker's restart
    policy would; the document kills exactly INGEST_MAX_ATTEMPTS workers (real deaths, counted
    here, not a pre-set counter), then ends failed with the reason shown to its managers on the
    collection page; the fine document behind it is ingested (the queue keeps draining)."""
    poison, fine = upload(
        people, ("poison.txt", b"POISON-PILL " * 50), ("fine.txt", b"Fine rule one.")
    )
    # Short leases: a dead worker's document is taken again seconds later (the parse step's
    # lease adds PARSE_TIMEOUT_SECONDS, so that is short too; a text file parses at once).
    env = env_for(redis_broker, tmp_path, INGEST_LEASE_SECONDS="2", PARSE_TIMEOUT_SECONDS="5")
    log, deaths = tmp_path / "worker.log", 0
    deadline = time.monotonic() + 400
    worker = start(env, log, killer=True)
    try:
        while not (poison.is_finished and fine.is_finished):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            if worker.poll() is not None:
                assert worker.returncode == -signal.SIGKILL, log.read_text()[-3000:]
                deaths += 1
                assert deaths <= settings.INGEST_MAX_ATTEMPTS, "no end to the redeliveries"
                worker = start(env, log, killer=True)
            time.sleep(0.2)
            poison.refresh_from_db()
            fine.refresh_from_db()
    finally:
        if worker.poll() is None:
            stop(worker, signal.SIGTERM)
    assert deaths == settings.INGEST_MAX_ATTEMPTS == poison.attempts
    assert poison.status == Status.FAILED
    assert poison.error == f"Gave up after {settings.INGEST_MAX_ATTEMPTS} attempts."
    assert fine.status == Status.READY, fine.error
    page = login(people.owner).get(reverse("ingestion:collection", args=[people.legal.pk]))
    assert poison.error in page.content.decode()
    outsider = login(people.outsider).get(reverse("ingestion:collection", args=[people.legal.pk]))
    assert outsider.status_code in (403, 404)


@sqlite_only
def test_a_redelivery_while_the_first_run_goes_on_starts_no_second_run(
    people, redis_broker, tmp_path
) -> None:
    """Reliability #26: a 5-second visibility timeout and a document that takes far longer.
    The broker redelivers the unacknowledged message to a second worker while the first still
    works on it; the lease (ingestion/models.py lease_owner/lease_until) makes that delivery a
    no-op: one run (attempts 1), only the first worker embedded it, and the end state is a
    single run's: ready, one point per chunk."""
    text = " ".join(f"Clause {n} sets the rule for case {n * 7}." for n in range(8000))
    [document] = upload(people, ("long.txt", text.encode()))
    # A lease long enough to outlast an embedding batch on a busy machine: this is about a live
    # lease (one that runs out is a dead worker's, taken over as in the test above).
    env = env_for(redis_broker, tmp_path, INGEST_LEASE_SECONDS="60")
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    first = start({**env, "INDEX_PATH": str(tmp_path / "a")}, logs[0], "a")
    second = None
    try:
        wait_for_line(logs[0], f"document {document.pk}: 256 of ", timeout=240)
        # Started once the only message is in hand: it can get the document by redelivery only.
        second = start({**env, "INDEX_PATH": str(tmp_path / "b")}, logs[1], "b")
        wait_for_line(logs[1], "held by another worker", timeout=120)
        wait_status(document, {Status.READY, Status.FAILED}, timeout=300)
    finally:
        for worker in (first, second):
            if worker is not None:
                stop(worker, signal.SIGTERM)
    assert document.status == Status.READY and document.attempts == 1, document.error
    assert f"document {document.pk}: 256 of" not in logs[1].read_text()
    with override_settings(INDEX_PATH=tmp_path / "a"):
        try:
            assert index.point_counts() == {document.pk: document.chunks}
            assert reconcile(repair=False).clean
        finally:
            index.close()


def test_documents_survive_a_broker_outage_and_a_broker_restart(
    people, redis_broker, tmp_path, caplog
) -> None:
    """Reliability #27: a task queued before Redis is killed and restarted is still in the queue
    afterwards (append-only file, as docker-compose.yml runs Redis) and is ingested. Then, with
    the worker running, Redis is killed: an upload meanwhile is answered at once (302, no 500),
    the document stays queued in the database; when Redis is back the running worker reconnects,
    re-queues it, and it ends ready, with no worker restart."""
    [before] = upload(people, ("before.txt", b"Queued before the restart."))
    assert redis_broker.queued() == 1
    redis_broker.kill()
    redis_broker.start()
    assert redis_broker.queued() == 1  # the message outlived the restart

    log = tmp_path / "worker.log"
    worker = start(env_for(redis_broker, tmp_path), log)
    try:
        wait_status(before, {Status.READY, Status.FAILED}, timeout=180)
        assert before.status == Status.READY, before.error

        redis_broker.kill()
        started = time.monotonic()
        [during] = upload(people, ("during.txt", b"Uploaded while the broker was down."))
        assert time.monotonic() - started < 15
        assert during.status == Status.QUEUED and "stays queued" in caplog.text
        redis_broker.start()
        wait_status(during, {Status.READY, Status.FAILED}, timeout=180)
        assert during.status == Status.READY, (during.error, log.read_text()[-3000:])
        assert worker.poll() is None  # the same worker, never restarted
    finally:
        stop(worker, signal.SIGTERM)
