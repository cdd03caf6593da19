"""Log lines an operator can join up: LOG_FORMAT=json writes one JSON object per line, and every
line written while a request (or a task it enqueued) runs carries that request's id.

Question and document text never go into a log line at INFO or above: they belong to the audit
trail, whose readers are chosen; a log's are not (tests/test_logs.py holds every line to it)."""

import logging
import re
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

# Set by the request-id middleware for a request (its streamed body included), and by the Celery
# signals in assistant/celery.py for a task; None elsewhere (start-up, the index's own threads).
current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# A caller's X-Request-ID is kept only if it is short and plain: it is echoed into every log line
# and a response header, where a long or odd value could forge lines or bloat them.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/@-]{1,128}")


def request_id_from(header: str | None) -> str:
    """The caller's id when it is sane (a proxy's, to join its log to ours), else a new one."""
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record a handler writes, whichever logger made it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id.get()
        return True


def json_formatter() -> JsonFormatter:
    """time, level, logger, message, request_id; fields passed in `extra` (the access line's
    user_id, route, status, duration_ms) follow; a traceback goes in exc_info."""
    return JsonFormatter(
        ["levelname", "name", "message", "request_id"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601 in UTC
        json_ensure_ascii=False,
    )
