from celery import shared_task

from ingestion import pipeline


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def ingest_document(document_id: int) -> None:
    pipeline.ingest(document_id)
