import importlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from assistant import llm, llm_server
from ingestion import index
from ingestion.models import Document
from tests.factories import make_collection, make_user
from tests.fake_llm import FakeLLM

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURES = SHARED / "fixtures" / "documents"


def shared_fixture(relative: str) -> Path:
    """A real-world file from ../shared; a user's clone has none, so the test skips there."""
    path = FIXTURES / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared exists only in the team's checkouts and CI)")
    return path


@pytest.fixture(scope="session", autouse=True)
def close_index() -> Iterator[None]:
    yield
    index.close()


def empty_index() -> None:
    index.close()
    shutil.rmtree(settings.INDEX_PATH, ignore_errors=True)


@pytest.fixture(autouse=True)
def clean_index() -> Iterator[None]:
    """Each test starts with an empty vector index, and with fresh cached clients."""
    empty_index()
    yield
    llm.connection.cache_clear()


@pytest.fixture(params=["edge", "server"])
def any_engine(request, tmp_path) -> str:
    """Runs a test on both engines: Qdrant Edge (embedded profile) and qdrant-client as a Qdrant
    server's client, against its local mode as the stand-in (the requests a server receives)."""
    if request.param == "server":
        from qdrant_client import QdrantClient

        from ingestion.index.server import ServerEngine

        # The module, not index.engine(): the package exports the function under that name.
        registry = importlib.import_module("ingestion.index.engine")
        client = QdrantClient(path=str(tmp_path / "server-stand-in"))
        registry._engines[registry.key()] = ServerEngine(client, settings.QDRANT_COLLECTION)
    return str(request.param)


@pytest.fixture(autouse=True)
def clean_cache() -> None:
    """Rate-limit counts never leak from one test into the next (SQLite reuses user ids)."""
    cache.clear()


@pytest.fixture
def people(db):
    """An owner (manages the collection), a teammate (reads it), an outsider (another group)."""
    owner = make_user("owner")
    teammate = make_user("teammate", groups=["Legal"])
    outsider = make_user("outsider", groups=["Sales"])
    legal = make_collection("Legal", groups=["Legal"], managers=[owner])
    sales = make_collection("Sales", groups=["Sales"])
    return type(
        "People",
        (),
        {
            "owner": owner,
            "teammate": teammate,
            "outsider": outsider,
            "legal": legal,
            "sales": sales,
        },
    )


def login(user) -> Client:
    """A signed-in client. Client.login() cannot be used: it passes no request, which django-axes
    needs; the real sign-in form is tested in tests/assistant/test_identity.py."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real Celery worker consuming the real broker (Redis, or the folder broker when
    embedded). It runs in this process because the Edge shard admits one process."""
    from celery.contrib.testing.worker import start_worker

    from assistant.celery import app

    with django_db_blocker.unblock():
        app.control.purge()
        with start_worker(
            app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker:
            yield worker


def wait_for_documents(*documents: Document, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for document in documents:
        while True:
            document.refresh_from_db()
            if document.is_finished:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{document} still {document.status} after {timeout} s")
            time.sleep(0.2)


@pytest.fixture
def fake_llm(settings) -> Iterator[FakeLLM]:
    fake = FakeLLM()
    settings.LLM_BASE_URL = fake.url
    settings.LLM_READ_TIMEOUT = 1.0
    llm.connection.cache_clear()
    yield fake
    fake.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def vllm_url(tmp_path_factory) -> Iterator[str]:
    """The real vLLM CPU server, started once per test session."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    log = Path(os.environ.get("ENCLAVE_VAR_DIR", tmp_path_factory.mktemp("vllm"))) / "vllm.log"
    process = llm_server.start(port, log)
    try:
        llm_server.wait_healthy(url, process, timeout=400)
        yield url
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)


@pytest.fixture
def real_llm(settings, vllm_url) -> str:
    settings.LLM_BASE_URL = vllm_url
    llm.connection.cache_clear()
    return vllm_url


def read_events(response) -> list[tuple[str, dict]]:
    """Parse a streamed server-sent-events response into (event, data) pairs, in order."""
    import json

    events = []
    buffer = b""
    for chunk in response.streaming_content:
        buffer += chunk
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            name, data = "message", ""
            for line in frame.decode().splitlines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data += line[6:]
            events.append((name, json.loads(data) if data else {}))
    return events


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's chromium: Playwright cannot download its own browser on these machines."""
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session", autouse=True)
def audit_unlocked_for_flush() -> Iterator[None]:
    """Transactional tests empty every table afterwards. PostgreSQL does it with TRUNCATE, which
    the audit tables' statement triggers refuse (0016_audit_truncate_trigger): they are disabled
    for exactly that flush. SQLite deletes rows, so the append-only triggers are unlocked for
    exactly that flush (the application never writes this table)."""
    from django.core.management.commands import flush
    from django.db import connections

    from assistant.audit.triggers import TABLES

    original = flush.Command.handle

    def handle(self, **options):
        connection = connections[options.get("database") or "default"]
        if connection.vendor == "postgresql":
            switch = "ALTER TABLE {0} {1} TRIGGER {0}_no_truncate"
            with connection.cursor() as cursor:
                for table in TABLES:
                    cursor.execute(switch.format(table, "DISABLE"))
            try:
                return original(self, **options)
            finally:
                with connection.cursor() as cursor:
                    for table in TABLES:
                        cursor.execute(switch.format(table, "ENABLE"))
        if connection.vendor != "sqlite":
            return original(self, **options)
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO enclave_audit_unlock VALUES ('test flush')")
        try:
            return original(self, **options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM enclave_audit_unlock")

    flush.Command.handle = handle
    yield
    flush.Command.handle = original
