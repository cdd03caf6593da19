"""The README's "Use it from your own tools" examples, run as a new user pastes them: on the demo
that `make run` seeds, alice makes a token on /tokens/, and the curl and the Python blocks ask a
live server with it. The model is faked at its HTTP edge; retrieval, scope and sources are
real, so a question the demo cannot answer ("found nothing") fails here."""

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from assistant.models import QueryRecord
from ingestion.models import Document
from tests.factories import ingest_now
from tests.test_api import make_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Use it from your own tools"


def blocks(language: str) -> list[str]:
    section = README.read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"^```{language}\n(.*?)^```", section, re.DOTALL | re.MULTILINE)


@pytest.fixture
def alice(db) -> User:
    """The demo as `make run` seeds it, with alice's collection ingested (a worker would)."""
    call_command("seed_demo", stdout=io.StringIO())
    for document in Document.objects.filter(collection__name="Employee handbook"):
        ingest_now(document.pk)
    return User.objects.get(username="alice")


def run(command: list[str], script: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        command,
        input=script,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_curl_example_gets_a_cited_answer(live_server, alice, fake_llm) -> None:
    [script] = blocks("sh")
    # The two placeholders a user replaces: the demo's address and the token.
    assert script.count("http://127.0.0.1:8000") == script.count("enc_...") == 1
    script = script.replace("http://127.0.0.1:8000", live_server.url)
    script = script.replace("enc_...", make_token(alice))

    reply = json.loads(run(["sh"], script, {}))

    message = reply["choices"][0]["message"]
    assert message["content"] == "Employees get 27 days of leave [1]."
    first = message["sources"][0]
    assert first["title"] == "leave-policy" and "27 days of paid annual leave" in first["text"]
    assert message["grounding"]["relevant"] is True
    assert QueryRecord.objects.get().channel == "api"


def test_the_python_example_gets_cited_answers_streamed_and_not(
    live_server, alice, fake_llm
) -> None:
    [script] = blocks("python")
    env = {"ENCLAVE_URL": live_server.url, "ENCLAVE_TOKEN": make_token(alice)}

    printed = run([sys.executable, "-"], script, env)

    lines = printed.splitlines()
    assert lines[0] == "Employees get 27 days of leave [1]."
    assert re.fullmatch(rf"1 leave-policy page 1 {live_server.url}/\S+", lines[1])
    assert "Employees get 27 days of leave [1].\n[1] leave-policy, page 1" in printed
    answered, streamed = QueryRecord.objects.order_by("id")
    assert (answered.channel, answered.outcome) == ("api", QueryRecord.Outcome.ANSWERED)
    assert streamed.outcome == QueryRecord.Outcome.ANSWERED
    # Each question found the passage that answers it, first.
    assert "27 days of paid annual leave" in answered.retrieved[0]["text"]
    assert "carried over" in streamed.retrieved[0]["text"]
