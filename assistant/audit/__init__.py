"""The audit trail: record() and the query record's lifecycle append to one hash chain that
`verify` walks. Callers write events inside the same transaction as the change they describe."""

import hashlib
import heapq
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models import Model
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from assistant.audit.models import AuditEvent, Chained, ChainHead, QueryRecord

Action = AuditEvent.Action
GENESIS = "0" * 64

# What each row's hash covers besides its content: everything but the chain columns and the
# purge marker. Adding a field here changes every hash: never edit, only append new names.
EVENT_FIELDS = (
    "created_at", "actor_ref", "actor_username", "action", "target_type", "target_id",
    "target_label", "detail", "ip",
)  # fmt: skip
# Events chained since retention could reach them hash these apart (their content_hash), so
# `purge_audit` can blank them; their row hash covers the other fields. Earlier events have the
# content_hash of nothing and a row hash over all EVENT_FIELDS: their content cannot be purged.
EVENT_CONTENT_FIELDS = ("target_label", "detail", "ip")
EVENT_META_FIELDS = tuple(f for f in EVENT_FIELDS if f not in EVENT_CONTENT_FIELDS)
BLANK_EVENT: dict[str, Any] = {"target_label": "", "detail": {}, "ip": None}
RECORD_FIELDS = (
    "user_ref", "username", "group_keys", "conversation_ref", "created_at", "scope",
    "collection_keys", "document_keys", "prompt_version", "model", "params", "outcome",
    "error", "prompt_tokens", "completion_tokens", "first_token_ms", "latency_ms", "finished_at",
)  # fmt: skip
# Links to an earlier record, hashed only when set: records chained before they existed keep
# their hashes, and setting or clearing one later still breaks the row's hash.
RECORD_LINK_FIELDS = ("regenerates_ref", "edits_ref")
# Where a question came from and the model policy that chose its server, hashed the same way:
# only when not the default, so records chained before the API and the policy keep their hashes.
RECORD_ORIGIN_DEFAULTS: dict[str, Any] = {
    "channel": "chat", "token_ref": None, "endpoint": "on_premises", "policy": {},
}  # fmt: skip


def canonical(value: Any) -> bytes:
    def default(obj: Any) -> str:
        if hasattr(obj, "isoformat"):
            return obj.isoformat()
        return str(obj)

    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=default).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


NO_CONTENT = sha256(b"")


def sealed_whole(row: Chained) -> bool:
    """An event chained before its content had a hash of its own."""
    return isinstance(row, AuditEvent) and row.content_hash == NO_CONTENT


def content_hash(row: Chained) -> str:
    if isinstance(row, QueryRecord):
        return sha256(canonical({f: getattr(row, f) for f in QueryRecord.CONTENT_FIELDS}))
    if sealed_whole(row):
        return NO_CONTENT
    return sha256(canonical({f: getattr(row, f) for f in EVENT_CONTENT_FIELDS}))


def row_hash(row: Chained) -> str:
    fields: tuple[str, ...] = RECORD_FIELDS
    if isinstance(row, AuditEvent):
        fields = EVENT_FIELDS if sealed_whole(row) else EVENT_META_FIELDS
    else:
        fields += tuple(f for f in RECORD_LINK_FIELDS if getattr(row, f) is not None)
        fields += tuple(f for f, d in RECORD_ORIGIN_DEFAULTS.items() if getattr(row, f) != d)
    body = {
        "table": row._meta.label_lower,
        "seq": row.seq,
        "prev": row.prev_hash,
        "content": row.content_hash,
        "fields": {f: getattr(row, f) for f in fields},
    }
    return sha256(canonical(body))


def append(row: Chained) -> None:
    """Give the row its place in the chain and save it. Must run inside a transaction."""
    head, _ = ChainHead.objects.select_for_update().get_or_create(pk=1)
    row.seq = head.seq + 1
    row.prev_hash = head.hash
    row.content_hash = content_hash(row)
    row.hash = row_hash(row)
    row.save()
    head.seq, head.hash = row.seq, row.hash
    head.save(update_fields=["seq", "hash"])


def client_ip(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


# What one event may keep of its detail: the chain is permanent, and some detail comes from the
# request (field names, usernames tried).
MAX_ITEMS = 100  # per list or mapping; the rest is counted
MAX_CHARS = 300  # per string
MAX_DETAIL_BYTES = 16_384


def bounded(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_CHARS else value[:MAX_CHARS] + "…"
    if isinstance(value, list | tuple):
        kept = [bounded(v) for v in value[:MAX_ITEMS]]
        rest = len(value) - len(kept)
        return [*kept, f"… and {rest} more"] if rest else kept
    if isinstance(value, dict):
        items = list(value.items())
        mapping = {bounded(str(k)): bounded(v) for k, v in items[:MAX_ITEMS]}
        if rest := len(items) - len(mapping):
            mapping["…"] = f"and {rest} more"
        return mapping
    return value


def bounded_detail(detail: dict[str, Any]) -> dict[str, Any]:
    kept = bounded(detail)
    size = len(canonical(kept))
    if size <= MAX_DETAIL_BYTES:
        return kept
    excerpt = json.dumps(kept, ensure_ascii=False)[: MAX_CHARS * 3]  # in the caller's order
    return {"truncated": f"{size} bytes, over the limit of {MAX_DETAIL_BYTES}", "excerpt": excerpt}


def record(
    action: str,
    actor: User | AnonymousUser | None,
    target: Model | None = None,
    *,
    detail: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    label: str = "",
) -> AuditEvent:
    user = actor if isinstance(actor, User) else None
    event = AuditEvent(
        created_at=timezone.now(),
        action=action,
        actor_ref=user.pk if user else None,
        actor_username=user.get_username() if user else "",
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=(label or str(target))[:300] if target is not None else label[:300],
        detail=bounded_detail(detail or {}),
        ip=client_ip(request),
    )
    with transaction.atomic():
        append(event)
    return event


def keys(ids: list[int]) -> str:
    return "," + "".join(f"{i}," for i in sorted(set(ids)))


def finalize(record: QueryRecord, **outcome: Any) -> None:
    """Write the answer and outcome once, and chain the record. Must run in a transaction."""
    for name, value in outcome.items():
        setattr(record, name, value)
    record.finished_at = timezone.now()
    append(record)


# --- verification ---------------------------------------------------------------------------


@dataclass
class Problem:
    seq: int | None
    row: str
    reason: str

    def __str__(self) -> str:
        return f"seq {self.seq} ({self.row}): {self.reason}"


def chained_rows() -> Iterator[Chained]:
    """Every chained row of both tables, in chain order, streamed."""
    events = AuditEvent.objects.filter(seq__isnull=False).order_by("seq").iterator(500)
    records = QueryRecord.objects.filter(seq__isnull=False).order_by("seq").iterator(500)
    return heapq.merge(events, records, key=lambda r: r.seq or 0)


def purged_seqs() -> set[int]:
    purged: set[int] = set()
    for event in AuditEvent.objects.filter(action=Action.AUDIT_PURGED, seq__isnull=False):
        purged.update(event.detail.get("seqs", []))
    return purged


def purged(row: Chained) -> bool:
    """Whether retention removed the row's content (its hashes stay)."""
    if isinstance(row, QueryRecord):
        return row.purged_at is not None
    content = {f: getattr(row, f) for f in EVENT_CONTENT_FIELDS}
    return content == BLANK_EVENT and content_hash(row) != row.content_hash


def verify(checkpoint: dict | None = None) -> tuple[int, Problem | None]:
    """Walk the chain; return how many rows verified and the first problem found, if any."""
    expected_seq, prev = 1, GENESIS
    checkpoint_seen = False
    allowed_purges = purged_seqs()
    for row in chained_rows():
        label = f"{row._meta.label_lower} id {row.pk}"
        if row.seq != expected_seq:
            reason = (
                f"expected seq {expected_seq}: rows {expected_seq}..{(row.seq or 0) - 1} are "
                "missing (deleted)"
                if (row.seq or 0) > expected_seq
                else "out of order (reordered or duplicated)"
            )
            return expected_seq - 1, Problem(row.seq, label, reason)
        if row.prev_hash != prev:
            return expected_seq - 1, Problem(row.seq, label, "does not link to the row before")
        if purged(row):
            if row.seq not in allowed_purges:
                return expected_seq - 1, Problem(row.seq, label, "content removed without a purge")
        elif content_hash(row) != row.content_hash:
            return expected_seq - 1, Problem(row.seq, label, "content was edited")
        if row_hash(row) != row.hash:
            return expected_seq - 1, Problem(row.seq, label, "row was edited")
        if checkpoint and row.seq == checkpoint["seq"]:
            if row.hash != checkpoint["hash"]:
                return expected_seq - 1, Problem(row.seq, label, "differs from the checkpoint")
            checkpoint_seen = True
        prev = row.hash
        expected_seq += 1
    count = expected_seq - 1
    if checkpoint and not checkpoint_seen:
        reason = f"the chain ends at seq {count}; the checkpoint has seq {checkpoint['seq']}"
        return count, Problem(count + 1, "chain tail", f"truncated: {reason}")
    return count, None


def checkpoint(secret: str) -> dict:
    """The head of the chain, signed: store it outside the database (write-once storage)."""
    head = ChainHead.objects.get(pk=1)
    body = {"seq": head.seq, "hash": head.hash, "at": timezone.now().isoformat()}
    body["signature"] = sign(body, secret)
    return body


def sign(body: dict, secret: str) -> str:
    unsigned = {k: v for k, v in body.items() if k != "signature"}
    return hmac.new(secret.encode(), canonical(unsigned), hashlib.sha256).hexdigest()


def checkpoint_is_authentic(body: dict, secret: str) -> bool:
    return hmac.compare_digest(str(body.get("signature", "")), sign(body, secret))


# --- sign-in events ---------------------------------------------------------------------------


@receiver(user_logged_in)
def on_login(sender: object, request: HttpRequest, user: User, **kwargs: object) -> None:
    record(Action.LOGIN, user, user, request=request)


@receiver(user_logged_out)
def on_logout(sender: object, request: HttpRequest, user: User | None, **kwargs: object) -> None:
    if user is not None:
        record(Action.LOGOUT, user, user, request=request)


@receiver(user_login_failed)
def on_login_failed(
    sender: object, credentials: dict, request: HttpRequest | None = None, **kwargs: object
) -> None:
    # The password is never stored; the username tried is.
    username = str(credentials.get("username", ""))[:150]
    record(Action.LOGIN_FAILED, None, detail={"username": username}, request=request)
