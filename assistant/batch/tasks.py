from celery import Task, shared_task

from assistant.batch import work


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_batch(self: Task, run_id: int) -> None:
    """Work on one batch run for a time slice; enqueue itself again while documents are left
    (after a delay when another worker's lease still holds the run)."""
    wait = work.process(run_id)
    if wait is not None:
        raise self.retry(countdown=wait, max_retries=None)
