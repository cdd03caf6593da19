"""The embedded profile's worker: a Qdrant Edge shard opens in one process only, so the
web process also consumes the queue, on a thread pool, from the durable folder broker."""

import logging
import threading

from assistant.celery import app

log = logging.getLogger(__name__)
_started = threading.Event()


def start_worker(concurrency: int) -> None:
    if _started.is_set():
        return
    _started.set()
    # WorkController (not celery.apps.worker.Worker) installs no signal handlers, so it can
    # run off the main thread.
    worker = app.WorkController(
        app=app,
        pool="threads",
        concurrency=concurrency,
        hostname="embedded@localhost",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
    )
    threading.Thread(target=worker.start, name="celery-embedded", daemon=True).start()
    log.info("embedded Celery worker started (%s threads)", concurrency)
