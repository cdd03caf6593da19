from celery import Task, shared_task
from django.conf import settings

from ingestion import documents, index, pipeline


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
    # Enforced in a prefork worker only: the soft limit raises inside the task, which records the
    # failure; the hard one, a minute later, kills a child that ignored it. The threads pool
    # relies on the deadline the pipeline checks itself.
    soft_time_limit=settings.INGEST_TIME_LIMIT_SECONDS,
    time_limit=settings.INGEST_TIME_LIMIT_SECONDS + 60,
)
def ingest_document(self: Task, document_id: int) -> None:
    wait = pipeline.ingest(document_id)
    if wait:  # another worker holds the document: look again when its lease would run out
        raise self.retry(countdown=wait, max_retries=None)


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(ConnectionError, TimeoutError, index.IndexUnavailable),
    retry_backoff=True,
    max_retries=None,  # hidden already; its points must go however long the index is away
    retry_backoff_max=600,
)
def remove_document(document_id: int) -> None:
    """A deleted document's points, row and file, removed by a worker: the web's Qdrant key
    may be read-only (compose gives it one)."""
    documents.finish_removal(document_id)


@shared_task(ignore_result=True)
def optimize_index() -> None:
    """After a burst of ingestion: build HNSW where enough points are unindexed (embedded)."""
    index.optimize()
