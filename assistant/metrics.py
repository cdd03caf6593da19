"""Prometheus metrics: what every web and worker process counts, and /metrics, which serves them.

Each process writes its counters and histograms to files in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multi-process mode); /metrics adds them up, with gauges read at scrape time
(documents by status, queue depth, vector points).
"""

import hmac
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from celery import Task
from celery.signals import before_task_publish, task_prerun
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse

# prometheus_client reads this variable when a metric is made, and the collector when it
# scrapes: set before either (the setting, not the environment, is the source of truth).
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.PROMETHEUS_MULTIPROC_DIR)

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402

log = logging.getLogger(__name__)

# Files are named after the process. Web and worker containers share the directory but not
# their pid numbers (each has its pid 1, 7, 8...), so the host name is part of the name.
HOST = socket.gethostname().replace("_", "-")


def process_id(pid: int | None = None) -> str:
    return f"{HOST}-{pid or os.getpid()}"


values.ValueClass = values.MultiProcessValue(process_id)

# --- web --------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "enclave_http_requests", "HTTP requests by route name and status.", ["route", "status"]
)
HTTP_SECONDS = Histogram(
    "enclave_http_request_duration_seconds",
    "Time to the response's headers, by route name (a stream's body is not included).",
    ["route"],
)

# --- answers ----------------------------------------------------------------------------------
QUESTIONS = Counter(
    "enclave_questions", "Questions answered, by outcome and channel.", ["outcome", "channel"]
)
FIRST_TOKEN_SECONDS = Histogram(
    "enclave_answer_first_token_seconds",
    "From the question to the model's first token (retrieval included).",
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60),
)
ANSWER_SECONDS = Histogram(
    "enclave_answer_seconds",
    "From the question to the answer's end, whatever its outcome.",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
RETRIEVAL_SECONDS = Histogram(
    "enclave_retrieval_seconds",
    "An answer's search: query embedding, fused query, re-ranking, neighbours.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PROMPT_TOKENS = Counter("enclave_llm_prompt_tokens", "Prompt tokens of answers, as vLLM counts.")
COMPLETION_TOKENS = Counter(
    "enclave_llm_completion_tokens", "Completion tokens of answers, as vLLM counts."
)

# --- ingestion --------------------------------------------------------------------------------
STAGE_SECONDS = Histogram(
    "enclave_ingestion_stage_seconds",
    "Ingestion time by stage: parse and chunk per document, embed and write per batch.",
    ["stage"],
    buckets=(0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800),
)
CHUNKS_EMBEDDED = Counter("enclave_chunks_embedded", "Chunks embedded and written to the index.")
QUEUE_WAIT_SECONDS = Histogram(
    "enclave_ingestion_queue_wait_seconds",
    "From a task's enqueueing to its start in a worker (a retry's delay included).",
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200),
)

# Known label values start at zero, so that rate() and the dashboard see them before they move.
for _outcome in ("answered", "stopped", "refused", "denied", "error"):
    for _channel in ("chat", "api"):
        QUESTIONS.labels(_outcome, _channel)
for _stage in ("parse", "chunk", "embed", "write"):
    STAGE_SECONDS.labels(_stage)


def count_answer(
    channel: str,
    outcome: str,
    first_token_ms: int | None,
    latency_ms: int,
    prompt_tokens: int | None,
    completion_tokens: int | None,
) -> None:
    QUESTIONS.labels(outcome, channel).inc()
    if first_token_ms is not None:
        FIRST_TOKEN_SECONDS.observe(first_token_ms / 1000)
    ANSWER_SECONDS.observe(latency_ms / 1000)
    PROMPT_TOKENS.inc(prompt_tokens or 0)
    COMPLETION_TOKENS.inc(completion_tokens or 0)


ENQUEUED_AT = "enclave_enqueued_at"


@before_task_publish.connect
def stamp_enqueued_at(headers: dict, **_: object) -> None:
    headers[ENQUEUED_AT] = time.time()


@task_prerun.connect
def observe_queue_wait(task: Task, **_: object) -> None:
    enqueued_at = task.request.get(ENQUEUED_AT)
    if enqueued_at:
        QUEUE_WAIT_SECONDS.observe(max(time.time() - float(enqueued_at), 0))


def http_metrics(get_response: Callable[[HttpRequest], HttpResponse]):
    """Count every response by its URL's name, never its path: the set of series stays small."""

    def middleware(request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = get_response(request)
        match = request.resolver_match
        route = match.view_name if match is not None else "unmatched"
        HTTP_REQUESTS.labels(route, str(response.status_code)).inc()
        HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)
        return response

    return middleware


# --- what is read at scrape time --------------------------------------------------------------


class StateCollector(Collector):
    """Gauges read when Prometheus scrapes; one that cannot be read is left out, not zero."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count

        from ingestion.models import Document

        documents = GaugeMetricFamily(
            "enclave_documents", "Documents by status.", labels=["status"]
        )
        counts = dict(Document.objects.values_list("status").annotate(n=Count("id")))
        for status in Document.Status.values:
            documents.add_metric([status], counts.get(status, 0))
        yield documents
        depth = queue_depth()
        if depth is not None:
            yield GaugeMetricFamily(
                "enclave_ingestion_queue_depth", "Tasks waiting in the broker's queue.", depth
            )
        points = vector_points()
        if points is not None:
            yield GaugeMetricFamily("enclave_vector_points", "Points in the vector index.", points)


def queue_depth() -> int | None:
    """Messages waiting in the Celery queue: the Redis lists' length, or the folder broker's
    files. Tasks a worker has already taken are not counted."""
    from kombu.exceptions import ChannelError

    from assistant.celery import app

    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)  # a broker that is down fails the gauge
            channel = connection.default_channel
            try:
                queue = channel.queue_declare(
                    queue=settings.CELERY_TASK_DEFAULT_QUEUE, passive=True
                )
            except ChannelError:
                return 0  # Redis deletes an empty queue's list
            return int(queue.message_count)
    except Exception:
        log.warning("metrics: the broker's queue length could not be read", exc_info=True)
        return None


def vector_points() -> int | None:
    from ingestion import index

    try:
        # An exact count without a filter: a sum of segment sizes in Edge and in a server.
        return index.engine().count()
    except Exception:
        log.warning("metrics: the vector index could not be counted", exc_info=True)
        return None


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Every process's metrics, for a scraper holding METRICS_TOKEN; none at all without it."""
    if not settings.METRICS_TOKEN:
        raise Http404()
    expected = f"Bearer {settings.METRICS_TOKEN}".encode()
    given = request.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(given, expected):
        return HttpResponse(
            "A valid metrics token is required.\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": "Bearer"},
        )
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(settings.PROMETHEUS_MULTIPROC_DIR))
    registry.register(StateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


# --- the multi-process directory's housekeeping -----------------------------------------------


def clean(path: Path | None = None) -> None:
    """At start: remove the files of this host's processes that have exited. Other hosts' files
    (containers sharing the directory) and live processes' files are left alone."""
    ours = re.compile(rf"[a-z]+(_[a-z]+)?_{re.escape(HOST)}-(\d+)\.db")
    for file in (path or Path(settings.PROMETHEUS_MULTIPROC_DIR)).iterdir():
        match = ours.fullmatch(file.name)
        if match and not alive(int(match[2])):
            file.unlink(missing_ok=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def mark_dead(pid: int) -> None:
    """A gunicorn worker exited: drop its live gauges (counters stay, or totals would fall)."""
    multiprocess.mark_process_dead(process_id(pid), str(settings.PROMETHEUS_MULTIPROC_DIR))
