"""The embedded index at start-up: the upgrade from local mode, one process, a damaged shard."""

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from ingestion import index, upgrade
from ingestion.models import Document
from tests.conftest import free_port, wait_for_documents
from tests.factories import make_document

pytestmark = pytest.mark.embedded
ROOT = Path(__file__).resolve().parents[2]
Status = Document.Status
RULE = b"Travel expenses are refunded within 14 days of the claim."
# Holds a shard open in another process until its stdin closes, as the running server does.
HOLD = (
    "import sys, qdrant_edge as e; shard = e.EdgeShard.load(sys.argv[1]); "
    "print('open', flush=True); sys.stdin.read()"
)


@pytest.fixture
def var(settings, tmp_path: Path) -> Iterator[Path]:
    settings.LEGACY_QDRANT_PATH = tmp_path / "qdrant"
    settings.INDEX_PATH = tmp_path / "index"
    yield tmp_path
    index.close()


def shard(var: Path) -> Path:
    return var / "index" / settings.QDRANT_COLLECTION


def make_local_mode_index(path: Path, document: Document) -> None:
    """The folder a release before Qdrant Edge left: qdrant-client's local mode, one point."""
    from qdrant_client import QdrantClient, models

    dense = models.VectorParams(size=index.VECTOR_SIZE, distance=models.Distance.COSINE)
    sparse = models.SparseVectorParams(modifier=models.Modifier.IDF)
    client = QdrantClient(path=str(path))
    client.create_collection(
        settings.QDRANT_COLLECTION,
        vectors_config={index.DENSE: dense},
        sparse_vectors_config={index.LEXICAL: sparse},
    )
    client.upsert(
        settings.QDRANT_COLLECTION,
        [
            models.PointStruct(
                id=index.point_id(document.pk, document.sha256, 0),
                vector={
                    index.DENSE: [0.1] * index.VECTOR_SIZE,
                    index.LEXICAL: models.SparseVector(indices=[7], values=[1.0]),
                },
                payload={"collection_id": str(document.collection_id), "document_id": document.pk,
                         "chunk_no": 0, "text": RULE.decode()},
            )
        ],
    )  # fmt: skip
    client.close()
    assert (path / "collection" / settings.QDRANT_COLLECTION / "storage.sqlite").exists()


def make_ready_document(people) -> Document:
    """A document the old release had indexed: ready, one chunk, its file stored."""
    # Marked ready in the upload's own transaction: the task it enqueues finds nothing to do.
    with transaction.atomic():
        document = make_document(people.legal, "travel.txt", RULE)
        Document.objects.filter(pk=document.pk).update(status=Status.READY, chunks=1)
    document.refresh_from_db()
    return document


def test_an_old_local_mode_index_is_replaced_and_its_documents_queued(people, var, caplog) -> None:
    document = make_ready_document(people)
    make_local_mode_index(var / "qdrant", document)
    caplog.set_level(logging.WARNING, logger="ingestion.upgrade")

    report = upgrade.upgrade()

    assert report is not None and report.requeued == [document.pk]
    assert not (var / "qdrant").exists()
    assert (shard(var) / "edge_config.json").exists()
    document.refresh_from_db()
    assert document.status == Status.QUEUED
    assert f"the old index in {var / 'qdrant'} (qdrant-client local mode)" in caplog.text
    assert f"replaced by a Qdrant Edge index in {shard(var)}" in caplog.text
    assert "Every ready document is indexed again from its stored file" in caplog.text
    assert "The old folder is removed." in caplog.text
    assert "Documents queued to be indexed again: 1." in caplog.text
    # Idempotent: the next start finds nothing to do (the worker's start-up takes the queue).
    caplog.clear()
    assert upgrade.upgrade() is None
    assert caplog.text == ""


def test_a_start_with_a_current_index_changes_nothing(people, var) -> None:
    assert upgrade.upgrade() is None  # no documents: nothing to rebuild
    document = make_ready_document(people)
    index.replace(collection_id=people.legal.pk, document_id=document.pk, sha256=document.sha256,
                  title=document.title, chunks=[index.Chunk(0, 1, RULE.decode())])  # fmt: skip
    assert upgrade.upgrade() is None
    document.refresh_from_db()
    assert document.status == Status.READY


def test_an_empty_index_with_ready_documents_is_rebuilt(people, var, caplog) -> None:
    """What the recovery from a damaged shard relies on: moved aside, it is rebuilt at start."""
    document = make_ready_document(people)
    caplog.set_level(logging.WARNING, logger="ingestion.upgrade")
    report = upgrade.upgrade()
    assert report is not None and report.requeued == [document.pk]
    assert f"The vector index {shard(var)} is empty but documents are ready" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_the_worker_indexes_the_upgraded_documents_into_the_edge_shard(
    people,
    var,
    celery_worker,
) -> None:
    document = make_ready_document(people)
    make_local_mode_index(var / "qdrant", document)

    report = upgrade.upgrade()

    assert report is not None and report.requeued == [document.pk]
    assert not (var / "qdrant").exists()
    wait_for_documents(document)
    assert document.status == Status.READY and document.chunks > 0
    assert index.count(document.pk) == document.chunks
    [hit] = index.search("How soon are travel expenses refunded?", [people.legal.pk], 1)
    assert hit.document_id == document.pk
    assert index.point_counts() == {document.pk: document.chunks}
    assert (shard(var) / "edge_config.json").exists()


@contextmanager
def held(path: Path) -> Iterator[None]:
    """The shard open in another process: what the running embedded server does."""
    index.engine()  # create it
    index.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        yield
    finally:
        holder.kill()
        holder.wait(timeout=30)


def command_env(var: Path) -> dict[str, str]:
    """The embedded profile in `var`, as `make run` configures it."""
    services = {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "QDRANT_URL", "INDEX_PATH"}
    env = {k: v for k, v in os.environ.items() if k not in services}
    return {**env, "ENCLAVE_VAR_DIR": str(var), "EMBEDDED_WORKER": "true"}


def test_reconcile_index_says_the_server_holds_the_index(var, db) -> None:
    with held(shard(var)):
        with pytest.raises(CommandError) as error:
            call_command("reconcile_index")
        message = str(error.value)
        assert f"The vector index {shard(var)} is open in another process" in message
        assert "Stop the server and run this again" in message

        result = subprocess.run(
            [sys.executable, "manage.py", "reconcile_index"],
            cwd=ROOT,
            env=command_env(var),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert f"CommandError: The vector index {shard(var)} is open in another process" in (
        result.stderr
    )


def damage(path: Path) -> None:
    index.engine()
    index.close()
    config = path / "edge_config.json"
    config.write_text(config.read_text()[:10])  # truncated, as by a full disk


def test_a_damaged_index_names_its_folder_and_the_way_back(var, db) -> None:
    path = shard(var)
    damage(path)
    with pytest.raises(index.IndexUnavailable) as error:
        index.engine()
    message = str(error.value)
    assert f"The vector index {path} cannot be read" in message
    assert f"mv {path} {path}.broken" in message
    assert "python manage.py reconcile_index" in message

    with pytest.raises(CommandError) as command_error:
        call_command("reconcile_index")
    assert str(command_error.value) == message


def test_the_embedded_server_stops_at_start_with_a_damaged_index(var) -> None:
    path = shard(var)
    damage(path)
    env = {**command_env(var), "PORT": str(free_port())}
    # No control socket: the default one (~/.gunicorn) may belong to a server that is running.
    command = ["gunicorn", "-c", "assistant/gunicorn_conf.py", "--no-control-socket"]
    result = subprocess.run(
        [sys.executable, "-m", *command, "assistant.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 3, output  # gunicorn's "worker failed to boot": no restart loop
    assert f"[ERROR] The vector index {path} cannot be read" in output
    assert f"mv {path} {path}.broken" in output
    assert "Traceback" not in output
