"""gunicorn settings for both profiles: `gunicorn -c assistant/gunicorn_conf.py assistant.wsgi`."""

import os
import sys

from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
# Set before a worker imports torch: one intra-op thread. A question is one short sequence, which
# more threads do not speed up, and with a hundred streams' threads (and the embedded worker) they
# oversubscribe the cores: embedding one question took 430 ms at p50 on 2 threads, 16 ms on 1, on
# a busy 2-core machine (bench/load.py). An operator's own OMP_NUM_THREADS wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
# Each open answer stream holds a thread for its whole answer (seconds): 128 lets one worker hold
# the 100 concurrent streams bench/load.py measures, with threads left for pages and uploads.
threads = int(os.environ.get("WEB_THREADS", "128"))
# Embedded profile: a Qdrant Edge shard opens in one process only, so one worker.
workers = 1 if settings.EMBEDDED_WORKER else int(os.environ.get("WEB_WORKERS", "2"))
timeout = 120
# assistant.middleware.request_ids writes the access line, in LOG_FORMAT and without the query
# string (a conversation search there holds a user's words): gunicorn writes none.
accesslog = None


def on_starting(server) -> None:
    from assistant import metrics

    metrics.clean()  # counters of a previous run's workers (prometheus_client multi-process)


def child_exit(server, worker) -> None:
    from assistant import metrics

    metrics.mark_dead(worker.pid)


def post_worker_init(worker) -> None:
    import threading

    from ingestion import index

    if settings.EMBEDDED_WORKER and not settings.QDRANT_URL:
        from gunicorn.arbiter import Arbiter

        from ingestion import upgrade

        try:
            upgrade.upgrade()  # opens the shard, re-queues what it lacks, before the worker runs
        except index.IndexUnavailable as exc:
            worker.log.error("%s", exc)
            # This exit status makes the master stop too, instead of restarting the worker.
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
    # Load the embedder now, not on the first question (it takes seconds).
    threading.Thread(target=index.embedder, name="warm-embedder", daemon=True).start()
    if settings.EMBEDDED_WORKER:
        from assistant.embedded import start_worker

        start_worker(settings.CELERY_WORKER_CONCURRENCY)


def worker_exit(server, worker) -> None:
    from ingestion import index

    index.close()  # flush the Edge shard and release its folder lock
