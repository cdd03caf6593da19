"""/metrics: its token, the counters moving after an ingest and a question, the multi-process
directory, and the Grafana dashboard's queries."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from assistant import metrics
from ingestion.models import Document
from tests.conftest import login, read_events, wait_for_documents
from tests.factories import make_pdf

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]

TOKEN = "scrape-token-for-tests"
DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana" / "enclave.json"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def token(settings) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape() -> Samples:
    response = Client().get(reverse("metrics"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_not_found_without_a_token_setting(db, settings) -> None:
    settings.METRICS_TOKEN = ""
    response = Client().get(reverse("metrics"), headers={"Authorization": "Bearer anything"})
    assert response.status_code == 404


def test_a_missing_or_wrong_token_is_refused(token) -> None:
    url = reverse("metrics")
    for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        response = Client().get(url, headers=header)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Bearer"
        assert b"enclave_" not in response.content
    assert Client().get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_counters_move_after_an_ingest_and_a_question(
    people, token, celery_worker, fake_llm
) -> None:
    before = scrape()
    upload = reverse("ingestion:upload", args=[people.legal.pk])
    pdf = SimpleUploadedFile("refunds.pdf", make_pdf(["Cover.", "Refunds take 14 days."]))
    assert login(people.owner).post(upload, {"files": [pdf]}).status_code == 302
    document = Document.objects.get(collection=people.legal)
    wait_for_documents(document)
    assert document.status == Document.Status.READY
    events = read_events(
        login(people.teammate).post(
            reverse("chat:ask_new"), {"question": "How long do refunds take?"}
        )
    )
    assert events[-1][0] == "done"
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("enclave_questions_total", outcome="answered", channel="chat") == 1
    assert moved("enclave_questions_total", outcome="refused", channel="chat") == 0
    assert moved("enclave_answer_first_token_seconds_count") == 1
    assert moved("enclave_answer_seconds_count") == 1
    assert moved("enclave_answer_seconds_sum") > 0
    assert moved("enclave_retrieval_seconds_count") == 1
    for stage in ("parse", "chunk", "embed", "write"):
        assert moved("enclave_ingestion_stage_seconds_count", stage=stage) == 1, stage
    assert moved("enclave_chunks_embedded_total") == document.chunks > 0
    assert moved("enclave_ingestion_queue_wait_seconds_count") >= 1  # the optimisation may follow
    # The fake model reports no usage: the counters exist and stay put.
    assert ("enclave_llm_prompt_tokens_total", frozenset()) in after
    assert ("enclave_llm_completion_tokens_total", frozenset()) in after
    assert value(after, "enclave_documents", status="ready") == 1
    assert value(after, "enclave_documents", status="queued") == 0
    assert value(after, "enclave_vector_points") == document.chunks
    assert value(after, "enclave_ingestion_queue_depth") >= 0
    # Route names, never paths: no ids in the labels.
    assert moved("enclave_http_requests_total", route="ingestion:upload", status="302") == 1
    assert moved("enclave_http_requests_total", route="chat:ask_new", status="200") == 1
    assert moved("enclave_http_request_duration_seconds_count", route="ingestion:upload") == 1
    routes = {
        dict(labels).get("route") for name, labels in after if name.startswith("enclave_http")
    }
    # (A digit after a letter is a name's own, as in jsi18n; an id would follow a separator.)
    assert not [r for r in routes if re.search(r"/|(?<![a-z0-9])\d", r or "")], routes


def test_a_question_nothing_answers_counts_as_refused(people, token, fake_llm) -> None:
    before = scrape()
    outsider = login(people.outsider)  # reads Sales, which is empty
    read_events(outsider.post(reverse("chat:ask_new"), {"question": "Anything on refunds?"}))
    after = scrape()
    key = ("enclave_questions_total", frozenset({"outcome": "refused", "channel": "chat"}.items()))
    assert after[key] - before.get(key, 0) == 1
    assert value(after, "enclave_answer_first_token_seconds_count") == value(
        before, "enclave_answer_first_token_seconds_count"
    )  # no model, no first token


def count_in_child(amount: int) -> None:
    """Another process (a worker, say) counts, then exits."""
    code = (
        "import django; django.setup(); from assistant import metrics; "
        f"metrics.CHUNKS_EMBEDDED.inc({amount})"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "assistant.settings",
        "PROMETHEUS_MULTIPROC_DIR": str(django_settings.PROMETHEUS_MULTIPROC_DIR),
    }
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)


def test_another_process_counts_show_up_until_start_up_cleans_them(token) -> None:
    metrics.clean()
    before = value(scrape(), "enclave_chunks_embedded_total")
    count_in_child(7)
    assert value(scrape(), "enclave_chunks_embedded_total") == before + 7

    folder = Path(django_settings.PROMETHEUS_MULTIPROC_DIR)
    ours = f"counter_{metrics.process_id()}.db"
    [child] = [
        f
        for f in folder.glob(f"counter_{metrics.HOST}-*.db")
        if f.name != ours and value_of(f) == 7
    ]
    # Another container's process that wrote to the shared folder: never this host's to judge.
    shutil.copy(child, folder / "counter_other-host-1.db")
    metrics.clean()
    assert not child.exists()  # exited: removed at start
    assert (folder / ours).exists()  # this process is alive
    assert value(scrape(), "enclave_chunks_embedded_total") == before + 7  # the other host's
    (folder / "counter_other-host-1.db").unlink()
    assert value(scrape(), "enclave_chunks_embedded_total") == before


def value_of(file: Path) -> float:
    from prometheus_client.mmap_dict import MmapedDict

    return sum(
        v
        for key, v, _, _ in MmapedDict.read_all_values_from_file(str(file))
        if json.loads(key)[0] == "enclave_chunks_embedded"
    )


# --- the Grafana dashboard --------------------------------------------------------------------

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset", "le"}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: what is left once strings, label matchers,
    ranges, grouping clauses and function calls are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = re.findall(r"[A-Za-z_:][\w:]*(?![\w:])(?!\s*\()", expr)
    return set(names) - PROMQL_WORDS


def test_metric_names_are_read_out_of_promql() -> None:
    assert metric_names(
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{x="y(z)"}[$__rate_interval])))'
    ) == {"a_bucket"}
    assert metric_names("sum(rate(a_total[5m])) / max(b) or vector(0)") == {"a_total", "b"}


def test_the_dashboard_queries_only_metrics_the_app_exports(token) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "Enclave" and dashboard["uid"]
    scrape()  # so that the HTTP counters have a series
    exported = {name for name, _ in scrape()}
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(queries) >= 14
    read = set()
    for expr in queries:
        names = metric_names(expr)
        assert names, expr
        assert names <= exported, (expr, names - exported)
        read |= names
    # Every family the app exports has a panel.
    families = {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in exported}
    assert families <= {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in read}
