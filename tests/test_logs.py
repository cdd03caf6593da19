"""Structured logs: request ids from the header to the worker, JSON lines, and no question or
document text in any line at INFO or above."""

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from assistant import logs
from ingestion.models import Document
from tests.conftest import login, read_events, wait_for_documents

ROOT = Path(__file__).resolve().parents[1]
QUESTION_CANARY = "periwinkle-zeppelin-0451"
DOCUMENT_CANARY = "marmalade-obelisk-7730"


class Lines(logging.Handler):
    """Every record the root logger passes at INFO or above, formatted as each LOG_FORMAT
    would write it, when it is written (the request id is the one current then)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.addFilter(logs.RequestIdFilter())
        self.plain = logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"])
        self.json = logs.json_formatter()
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((self.plain.format(record), self.json.format(record)))

    def objects(self) -> list[dict]:
        return [json.loads(line) for _, line in self.lines]


@pytest.fixture
def lines() -> Iterator[Lines]:
    root = logging.getLogger()
    handler, level = Lines(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_sane_request_id_comes_back_and_any_other_is_replaced(client) -> None:
    response = client.get(reverse("healthz"), headers={"X-Request-ID": "proxy-7f3a.1"})
    assert response["X-Request-ID"] == "proxy-7f3a.1"
    made = client.get(reverse("healthz"))["X-Request-ID"]
    assert len(made) == 32 and made != client.get(reverse("healthz"))["X-Request-ID"]
    for insane in ("x" * 129, "a b", "forged\nline", "<script>", "ünïcode"):
        returned = client.get(reverse("healthz"), headers={"X-Request-ID": insane})
        assert returned["X-Request-ID"] != insane and len(returned["X-Request-ID"]) == 32


def test_each_request_writes_one_json_access_line(people, lines) -> None:
    response = login(people.owner).get(
        reverse("chat:index") + "?q=secret", headers={"X-Request-ID": "req-1"}
    )
    assert response.status_code == 200
    [access] = [line for line in lines.objects() if line["logger"] == "assistant.access"]
    assert access["request_id"] == "req-1"
    assert access["user_id"] == people.owner.pk
    assert access["route"] == "chat:index"
    assert access["status"] == 200
    assert access["method"] == "GET"
    assert isinstance(access["duration_ms"], float)
    assert access["level"] == "INFO" and access["time"].endswith("+00:00")
    assert "secret" not in lines.lines[-1][0] + lines.lines[-1][1]  # no query string


def test_a_refused_request_is_logged_with_no_user(client, lines) -> None:
    response = client.get(reverse("chat:index"))
    assert response.status_code == 302
    [access] = [line for line in lines.objects() if line["logger"] == "assistant.access"]
    assert (access["user_id"], access["route"], access["status"]) == (None, "chat:index", 302)


def test_a_streamed_answer_logs_its_access_line_when_it_ends(people, fake_llm, lines) -> None:
    response = login(people.owner).post(
        reverse("chat:ask_new"), {"question": "Anything?"}, headers={"X-Request-ID": "ask-1"}
    )
    assert response["X-Request-ID"] == "ask-1"
    assert not [line for line in lines.objects() if line["logger"] == "assistant.access"]
    read_events(response)
    [access] = [line for line in lines.objects() if line["logger"] == "assistant.access"]
    assert (access["request_id"], access["route"]) == ("ask-1", "chat:ask_new")
    assert logs.current_request_id.get() is None  # cleared for whatever this thread does next


def test_log_format_json_writes_one_object_per_line() -> None:
    script = "import django, logging; django.setup(); logging.getLogger('x').warning('a\\nb')"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "assistant.settings", "LOG_FORMAT": "json"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    [line] = done.stderr.splitlines()
    assert json.loads(line) | {"time": None} == {
        "time": None,
        "level": "WARNING",
        "logger": "x",
        "message": "a\nb",
        "request_id": None,
    }
    env["LOG_FORMAT"] = "xml"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert "LOG_FORMAT must be plain or json, got 'xml'" in done.stderr


@pytest.mark.django_db(transaction=True)
@pytest.mark.embedded
def test_no_question_or_document_text_reaches_the_logs(
    people, celery_worker, fake_llm, lines
) -> None:
    """The worker ingests a document and the model echoes its whole prompt (question and
    passages) back: the leakiest run there is. Every line carries its request id."""
    client = login(people.owner)
    text = f"The canteen policy: {DOCUMENT_CANARY} is served on Fridays.".encode()
    client.post(
        reverse("ingestion:upload", args=[people.legal.pk]),
        {"files": [SimpleUploadedFile("canteen.txt", text)]},
        headers={"X-Request-ID": "upload-42"},
    )
    wait_for_documents(Document.objects.get())
    assert Document.objects.get().status == Document.Status.READY

    fake_llm.mode = "echo"
    question = f"What is served on Fridays, {QUESTION_CANARY}?"
    response = client.post(reverse("chat:ask_new"), {"question": question})
    events = read_events(response)
    assert DOCUMENT_CANARY in "".join(d.get("text", "") for name, d in events if name == "token")
    conversation = events[0][1]["id"]
    fake_llm.mode = "error"  # a failing model: its error path logs too
    read_events(client.post(reverse("chat:ask", args=[conversation]), {"question": question}))
    client.get(reverse("chat:search") + f"?q={QUESTION_CANARY}")

    routes = [line["route"] for line in lines.objects() if line["logger"] == "assistant.access"]
    assert routes == ["ingestion:upload", "chat:ask_new", "chat:ask", "chat:search"]
    for plain, as_json in lines.lines:
        for canary in (QUESTION_CANARY, DOCUMENT_CANARY):
            assert canary not in plain and canary not in as_json, plain

    # The upload's id went with its task: the worker's lines about the document carry it.
    worker_lines = [
        line for line in lines.objects() if line["logger"].startswith("ingestion.index")
    ]
    assert worker_lines
    assert {line["request_id"] for line in worker_lines} == {"upload-42"}
