import logging
import os

from celery import Celery, bootsteps
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_ready,
    worker_shutdown,
)

from assistant.logs import current_request_id

log = logging.getLogger(__name__)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

app = Celery("enclave")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["ingestion", "assistant.batch"])


class RequeueStuckDocuments(bootsteps.StartStopStep):
    """Work a dead worker or a lost broker message left behind is picked up again on start, and
    on every reconnection to the broker: an upload made while it was down is only in the
    database, and the worker reconnects without starting again (worker_ready is sent once)."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, consumer: object) -> None:
        from ingestion.documents import requeue_stuck

        requeue_stuck()


app.steps["consumer"].add(RequeueStuckDocuments)


@worker_ready.connect
def prepare_index(**_: object) -> None:
    """A Qdrant server's collection is created by a worker: the web's key may be read-only."""
    from django.conf import settings

    from ingestion import index

    if settings.QDRANT_URL:
        try:
            index.ping()
        except Exception:
            log.exception("the index is unavailable; ingestion retries until it returns")


@worker_ready.connect
def resume_stuck_batches(**_: object) -> None:
    from assistant.batch.jobs import resume_stuck

    resume_stuck()  # batch runs whose worker died resume where they were


@worker_shutdown.connect
def close_index(**_: object) -> None:
    from ingestion import index

    index.close()  # flushes an Edge shard and releases its folder lock


@setup_logging.connect
def keep_django_logging(**_: object) -> None:
    """Django's LOGGING sets up the root logger (JSON or plain, with the request id); without a
    receiver here Celery would give its task loggers a handler of its own, in its format."""


@before_task_publish.connect
def send_request_id(headers: dict, **_: object) -> None:
    # The request (or task) that enqueues work hands its id on, so the work's log lines join it.
    request_id = current_request_id.get()
    if request_id:
        headers["request_id"] = request_id


@task_prerun.connect
def take_request_id(task, **_: object) -> None:
    # A custom message header shows up as an attribute of the task's request.
    current_request_id.set(task.request.get("request_id"))


@task_postrun.connect
def drop_request_id(**_: object) -> None:
    current_request_id.set(None)  # a pool thread runs the next task next


@worker_init.connect
def clean_metrics(**_: object) -> None:
    from assistant import metrics

    metrics.clean()  # files of this host's exited processes (prometheus_client multi-process)
