from celery import shared_task

from ingestion import index, pipeline


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def ingest_document(document_id: int) -> None:
    pipeline.ingest(document_id)


@shared_task(ignore_result=True)
def optimize_index() -> None:
    """After a burst of ingestion: build HNSW where enough points are unindexed (embedded)."""
    index.optimize()
