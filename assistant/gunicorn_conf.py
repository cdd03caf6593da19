"""gunicorn settings for both profiles: `gunicorn -c assistant/gunicorn_conf.py assistant.wsgi`."""

import os
import sys

from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "16"))  # each streaming answer holds one thread
# Embedded profile: a Qdrant Edge shard opens in one process only, so one worker.
workers = 1 if settings.EMBEDDED_WORKER else int(os.environ.get("WEB_WORKERS", "2"))
timeout = 120
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'


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
