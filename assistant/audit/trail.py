"""What auditors search and export, and what retention purges. Reads stream: an export of any
size holds one chunk of rows in memory at a time."""

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from assistant import audit, params
from assistant.audit.models import AuditEvent, QueryRecord
from ingestion.models import Collection

FILTERS = ("user", "group", "collection", "document", "since", "until", "outcome", "text")
CSV_COLUMNS = (
    "seq", "created_at", "username", "groups", "collections", "document_ids", "outcome",
    "question", "answer", "model", "prompt_tokens", "completion_tokens", "first_token_ms",
    "latency_ms", "hash", "endpoint", "policy",
)  # fmt: skip


class BadFilter(ValueError):
    pass


def parse_day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadFilter(
            gettext("%(name)s must be a date like 2026-11-26") % {"name": name}
        ) from None


def parse_id(value: str, name: str) -> int:
    if not params.is_number(value):
        raise BadFilter(gettext("%(name)s must be a number") % {"name": name})
    return int(value)


def query_records(params: Mapping[str, str]) -> QuerySet[QueryRecord]:
    """Query records matching the auditor's filters, newest first."""
    records = QueryRecord.objects.all()
    if value := params.get("user", "").strip():
        records = records.filter(username=value)
    if value := params.get("group", "").strip():
        records = records.filter(group_keys__contains=QueryRecord.group_key(value))
    if value := params.get("collection", "").strip():
        records = records.filter(collection_keys__contains=f",{parse_id(value, 'collection')},")
    if value := params.get("document", "").strip():
        records = records.filter(document_keys__contains=f",{parse_id(value, 'document')},")
    if value := params.get("since", "").strip():
        records = records.filter(created_at__date__gte=parse_day(value, "since"))
    if value := params.get("until", "").strip():
        records = records.filter(created_at__date__lte=parse_day(value, "until"))
    if value := params.get("outcome", "").strip():
        records = records.filter(outcome=value)
    if value := params.get("text", "").strip():
        records = records.filter(Q(question__icontains=value) | Q(answer__icontains=value))
    return records.order_by("-created_at", "-id")


def active_filters(params: Mapping[str, str]) -> dict[str, str]:
    return {k: params[k].strip() for k in FILTERS if params.get(k, "").strip()}


def row(record: QueryRecord) -> dict:
    return {
        "seq": record.seq,
        "created_at": record.created_at.isoformat(),
        "username": record.username,
        "groups": record.group_names,
        "collections": [c["name"] for c in record.scope],
        "document_ids": record.document_ids,
        "outcome": record.outcome,
        "question": record.question,
        "answer": record.answer,
        "model": record.model,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "first_token_ms": record.first_token_ms,
        "latency_ms": record.latency_ms,
        "hash": record.hash,
        "endpoint": record.endpoint,  # on_premises or external
        "policy": record.policy,  # the model that answered and the rule that allowed it
    }


def jsonl_lines(records: QuerySet[QueryRecord]) -> Iterator[bytes]:
    for record in records.iterator(chunk_size=200):
        full = {
            **row(record),
            "scope": record.scope,
            "retrieved": record.retrieved,
            "prompt": record.prompt,
            "prompt_version": record.prompt_version,
            "params": record.params,
            "error": record.error,
            "prev_hash": record.prev_hash,
            "purged": record.purged_at is not None,
            "regenerates_ref": record.regenerates_ref,
            "edits_ref": record.edits_ref,
            "channel": record.channel,
            "token_ref": record.token_ref,
        }
        yield (json.dumps(full, ensure_ascii=False) + "\n").encode()


class Echo:
    """csv.writer writes into this and gets each line back, so lines can be streamed."""

    def write(self, value: str) -> str:
        return value


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: one that would start a formula gets a leading
    quote (OWASP's advice for CSV injection); questions and answers are typed by users."""
    if isinstance(value, list):
        value = "|".join(map(str, value))
    if isinstance(value, dict):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_lines(records: QuerySet[QueryRecord]) -> Iterator[bytes]:
    writer = csv.writer(Echo())
    yield writer.writerow(CSV_COLUMNS).encode()
    for record in records.iterator(chunk_size=200):
        values = row(record)
        yield writer.writerow([cell(values[c]) for c in CSV_COLUMNS]).encode()


def events(params: Mapping[str, str]) -> QuerySet[AuditEvent]:
    found = AuditEvent.objects.all()
    if value := params.get("user", "").strip():
        found = found.filter(actor_username=value)
    if value := params.get("action", "").strip():
        found = found.filter(action=value)
    if value := params.get("since", "").strip():
        found = found.filter(created_at__date__gte=parse_day(value, "since"))
    if value := params.get("until", "").strip():
        found = found.filter(created_at__date__lte=parse_day(value, "until"))
    return found.order_by("-created_at", "-id")


# --- retention --------------------------------------------------------------------------------


Policy = tuple[int | None, bool]  # (retention days, legal hold)


def policies(collections: QuerySet[Collection]) -> dict[int, Policy]:
    return {c.pk: (c.retention_days, c.legal_hold) for c in collections}


def expired(
    records: Iterable[QueryRecord], now: datetime, rules: dict[int, Policy] | None = None
) -> list[QueryRecord]:
    """Records whose every searched collection has a retention period that has passed, and
    none of which is under legal hold. A record that searched nothing is kept."""
    if rules is None:
        rules = policies(Collection.objects.all())
    found = []
    for record in records:
        ids = [c["id"] for c in record.scope]
        if not ids:
            continue
        scope = [rules.get(i, (None, False)) for i in ids]
        if any(hold for _, hold in scope) or any(days is None for days, _ in scope):
            continue
        if record.created_at + timedelta(days=max(days or 0 for days, _ in scope)) < now:
            found.append(record)
    return found


def close_abandoned(older_than: timedelta = timedelta(hours=1)) -> int:
    """Finalise records whose answer never finished (the process died mid-stream) as errors,
    so every question ends in the chain."""
    stale = QueryRecord.objects.filter(
        seq__isnull=True, created_at__lt=timezone.now() - older_than
    ).order_by("id")
    closed = 0
    for record in stale.iterator(200):
        with transaction.atomic():
            audit.finalize(
                record,
                outcome=QueryRecord.Outcome.ERROR,
                error="The answer never finished (the server stopped while streaming).",
            )
        closed += 1
    return closed


def purge(*, dry_run: bool = False) -> list[int]:
    """Blank the content of expired records, keep their hashes and metadata, and chain an
    event naming them so `verify` can tell a purge from tampering.

    Retention and holds are read as the purge starts: a shorter retention or a lifted hold
    applies from the next purge. Each batch locks its collections and reads them again, so a
    hold set (or a retention lengthened) while this purge runs is honoured too."""
    now = timezone.now()
    candidates = QueryRecord.objects.filter(seq__isnull=False, purged_at__isnull=True)
    found = candidates.only("id", "seq", "scope", "created_at").order_by("seq").iterator(1000)
    victims = expired(found, now, policies(Collection.objects.all()))
    if dry_run:
        return [r.seq for r in victims if r.seq is not None]
    purged: list[int] = []
    for start in range(0, len(victims), audit.MAX_ITEMS):
        batch = victims[start : start + audit.MAX_ITEMS]
        ids = {c["id"] for r in batch for c in r.scope}
        with transaction.atomic():
            current = policies(Collection.objects.select_for_update().filter(pk__in=ids))
            seqs = [r.seq for r in expired(batch, now, current) if r.seq is not None]
            if not seqs:
                continue
            QueryRecord.objects.filter(seq__in=seqs).update(
                question="", answer="", prompt=[], retrieved=[], grounding={}, purged_at=now
            )
            audit.record(audit.Action.AUDIT_PURGED, None, detail={"seqs": seqs, "count": len(seqs)})
        purged += seqs
    return purged


def purge_events(*, dry_run: bool = False) -> list[int]:
    """Blank the content (label, detail, address) of events older than
    AUDIT_EVENT_RETENTION_DAYS, the same way: hashes stay and a chained event names them."""
    if settings.AUDIT_EVENT_RETENTION_DAYS is None:
        return []
    cutoff = timezone.now() - timedelta(days=settings.AUDIT_EVENT_RETENTION_DAYS)
    victims = (
        AuditEvent.objects.filter(seq__isnull=False, created_at__lt=cutoff)
        .exclude(action=audit.Action.AUDIT_PURGED)  # `verify` reads what they name
        .exclude(content_hash=audit.NO_CONTENT)  # their row hash covers the content
        .exclude(**audit.BLANK_EVENT)
        .order_by("seq")
    )
    seqs = [seq for seq in victims.values_list("seq", flat=True) if seq is not None]
    if dry_run:
        return seqs
    for start in range(0, len(seqs), audit.MAX_ITEMS):
        batch = seqs[start : start + audit.MAX_ITEMS]
        with transaction.atomic():
            AuditEvent.objects.filter(seq__in=batch).update(**audit.BLANK_EVENT)
            audit.record(
                audit.Action.AUDIT_PURGED, None, detail={"seqs": batch, "count": len(batch)}
            )
    return seqs
