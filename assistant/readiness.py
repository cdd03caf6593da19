"""What /readyz checks. Anyone may ask, so the answer names a failing check and nothing else:
the exception goes to the log. The LLM check is a real generation, so its result is shared
for a few seconds and concurrent probes wait for the one generation in flight."""

import logging
import time
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection

from assistant import llm as llm_client
from ingestion import index

log = logging.getLogger(__name__)

LLM_RESULT, LLM_LOCK = "readiness:llm", "readiness:llm:lock"
LLM_FRESH_SECONDS = 5
LLM_LOCK_SECONDS = 30  # longer than ping's 15-second timeout


def check(name: str, probe: Callable[[], None]) -> tuple[str, dict]:
    try:
        probe()
    except Exception:  # a readiness probe reports every failure, it never raises
        log.warning("%s check failed", name, exc_info=True)
        return name, {"ok": False, "error": "unavailable"}
    return name, {"ok": True}


def database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def broker() -> None:
    from assistant.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)


def llm() -> None:
    """A real one-token generation (its text is not reported), at most one per few seconds."""
    deadline = time.monotonic() + LLM_LOCK_SECONDS
    while (error := cache.get(LLM_RESULT)) is None:
        if cache.add(LLM_LOCK, True, LLM_LOCK_SECONDS):
            try:
                error = generate()
                cache.set(LLM_RESULT, error, LLM_FRESH_SECONDS)
            finally:
                cache.delete(LLM_LOCK)
            break
        if time.monotonic() > deadline:
            raise TimeoutError("another probe's generation did not finish")
        time.sleep(0.1)
    if error:
        raise RuntimeError(error)


def generate() -> str:
    """'' when the model answered, else the error's description (for the log)."""
    try:
        llm_client.ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def report() -> tuple[bool, dict[str, dict]]:
    checks = dict(
        [
            check("database", database),
            check("broker", broker),
            check("vector_store", index.ping),
            check("llm", llm),
        ]
    )
    return all(c["ok"] for c in checks.values()), checks
