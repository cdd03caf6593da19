import os

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

app = Celery("enclave")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["ingestion"])


@worker_ready.connect
def requeue_stuck_documents(**_: object) -> None:
    # Work a dead worker or a lost broker message left behind is picked up again on start.
    from ingestion.documents import requeue_stuck

    requeue_stuck()


@worker_shutdown.connect
def close_index(**_: object) -> None:
    from ingestion import index

    index.close()  # flushes an Edge shard and releases its folder lock
