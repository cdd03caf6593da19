"""The trail is permanent, so what anyone can make it hold is bounded: sign-in attempts per
address, the size of one event, and how long events keep their content. Retention changes apply
from the next purge; a hold set while a purge runs is honoured."""

import json
from datetime import timedelta
from functools import partial
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assistant import audit
from assistant.audit import trail
from assistant.models import AuditEvent, ChainHead, QueryRecord
from ingestion import collections
from ingestion.models import Collection
from tests.assistant.test_audit import finished_record, tamper
from tests.conftest import login, read_events
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.embedded
Action = AuditEvent.Action


def verify() -> str:
    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def purge() -> str:
    out = StringIO()
    call_command("purge_audit", stdout=out)
    return out.getvalue()


def sign_in(username: str, password: str = "wrong", address: str = "10.0.0.9"):  # noqa: S107
    return Client().post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


# --- sign-in attempts per address ---------------------------------------------------------


def test_sign_in_attempts_over_the_limit_get_a_429_and_write_one_event(settings, db) -> None:
    """Reliability #35: sign-in attempts over the limit are throttled (429) and logged."""
    settings.LOGIN_RATE_PER_ADDRESS = (3, 3600)
    make_user("alice")
    for n in range(3):
        assert sign_in(f"guess{n}").status_code == 200  # the form, with its error
    for n in range(3, 10):
        refused = sign_in(f"guess{n}")
        assert refused.status_code == 429
        wait = int(refused["Retry-After"])
        assert 0 < wait <= 3600
        assert refused.content.decode() == (
            f"You are signing in too fast: 3 attempts per hour. Try again in {wait} seconds."
        )
    assert sign_in("alice", PASSWORD).status_code == 429  # not even checked

    failed = AuditEvent.objects.filter(action=Action.LOGIN_FAILED)
    assert sorted(e.detail["username"] for e in failed) == ["guess0", "guess1", "guess2"]
    [denied] = AuditEvent.objects.filter(action=Action.ACCESS_DENIED)
    assert denied.ip == "10.0.0.9"
    assert denied.detail == {"reason": "sign-in attempts over 3 per hour from this address"}
    assert AuditEvent.objects.count() == 4

    # Other addresses, and the sign-in page itself, are not held back.
    assert sign_in("alice", PASSWORD, address="10.0.0.10").status_code == 302
    assert Client().get(reverse("login"), REMOTE_ADDR="10.0.0.9").status_code == 200
    assert "rows verified" in verify()


def test_the_sign_in_rate_has_a_default_and_is_read_from_the_environment(monkeypatch) -> None:
    from assistant import settings as config

    assert config.LOGIN_RATE_PER_ADDRESS == (20, 60)
    monkeypatch.setenv("LOGIN_RATE_PER_ADDRESS", "5/second")
    assert config.env_rate("LOGIN_RATE_PER_ADDRESS", "20/minute") == (5, 1)


# --- the size of one event ----------------------------------------------------------------


def test_an_event_keeps_a_bounded_list_of_names_and_counts_the_rest(people, fake_llm) -> None:
    extra = {f"field{n:03}": "x" for n in range(150)}
    client = login(people.teammate)
    read_events(client.post(reverse("chat:ask_new"), {"question": "Refunds?", **extra}))
    [event] = AuditEvent.objects.filter(action=Action.ACCESS_DENIED)
    names = event.detail["parameters"]
    assert len(names) == audit.MAX_ITEMS + 1
    assert names[0] == "field000" and names[-2] == "field099"
    assert names[-1] == "… and 50 more"
    assert "rows verified" in verify()


def test_an_event_keeps_a_bounded_detail_however_much_a_request_sends(people, fake_llm) -> None:
    # About 2.4 MB of field names, the most a request body may carry.
    extra = {f"{n:04}" + "y" * 2400: "" for n in range(999)}
    body = urlencode({"question": "Refunds?", **extra})
    client = login(people.teammate)
    kind = "application/x-www-form-urlencoded"
    read_events(client.post(reverse("chat:ask_new"), body, content_type=kind))
    [event] = AuditEvent.objects.filter(action=Action.ACCESS_DENIED)
    stored = json.dumps(event.detail)
    assert len(stored) < audit.MAX_DETAIL_BYTES
    assert event.detail["truncated"].endswith(f"over the limit of {audit.MAX_DETAIL_BYTES}")
    assert event.detail["excerpt"].startswith('{"reason": "client-supplied parameters ignored"')
    assert "rows verified" in verify()


def test_long_strings_and_mappings_are_cut() -> None:
    detail = audit.bounded_detail({"who": "z" * 1000, "map": {str(n): n for n in range(105)}})
    assert detail["who"] == "z" * audit.MAX_CHARS + "…"
    assert len(detail["map"]) == audit.MAX_ITEMS + 1 and detail["map"]["…"] == "and 5 more"
    assert audit.bounded_detail({"seqs": list(range(100))}) == {"seqs": list(range(100))}


# --- retention of events ------------------------------------------------------------------


def old_event(days: int, **fields: object) -> AuditEvent:
    event = AuditEvent(created_at=timezone.now() - timedelta(days=days), **fields)
    with transaction.atomic():
        audit.append(event)
    return event


def legacy_event(days: int, **fields: object) -> AuditEvent:
    """An event as chained before events had a content hash: the row hash covers every field."""
    event = AuditEvent(created_at=timezone.now() - timedelta(days=days), **fields)
    with transaction.atomic():
        head = ChainHead.objects.select_for_update().get(pk=1)
        event.seq, event.prev_hash, event.content_hash = head.seq + 1, head.hash, audit.NO_CONTENT
        body = {
            "table": "assistant.auditevent",
            "seq": event.seq,
            "prev": event.prev_hash,
            "content": event.content_hash,
            "fields": {f: getattr(event, f) for f in audit.EVENT_FIELDS},
        }
        event.hash = audit.sha256(audit.canonical(body))
        event.save()
        head.seq, head.hash = event.seq, event.hash
        head.save()
    return event


def test_old_events_lose_their_content_and_the_chain_still_verifies(settings, db) -> None:
    settings.AUDIT_EVENT_RETENTION_DAYS = 30
    legacy = legacy_event(90, action=Action.LOGIN_FAILED, detail={"username": "x"}, ip="10.0.0.1")
    old = old_event(
        40,
        action=Action.LOGIN_FAILED,
        actor_username="",
        target_label="label",
        detail={"username": "pa55word"},
        ip="10.0.0.2",
    )
    recent = old_event(10, action=Action.LOGIN_FAILED, detail={"username": "bob"}, ip="10.0.0.3")
    marker = old_event(40, action=Action.AUDIT_PURGED, detail={"seqs": [], "count": 0})
    assert purge() == (
        "closed 0 abandoned query record(s)\npurged 0 query record(s)\npurged 1 event(s)\n"
    )
    old.refresh_from_db()
    assert (old.detail, old.target_label, old.ip) == ({}, "", None)
    assert (old.action, old.seq) == (Action.LOGIN_FAILED, 2) and old.hash and old.content_hash
    for kept in (legacy, recent):
        kept.refresh_from_db()
        assert kept.detail["username"] and kept.ip
    marker.refresh_from_db()
    assert marker.detail == {"seqs": [], "count": 0}  # `verify` reads what markers name
    [purged] = AuditEvent.objects.filter(action=Action.AUDIT_PURGED).exclude(pk=marker.pk)
    assert purged.detail == {"seqs": [old.seq], "count": 1}
    assert verify() == "audit chain OK: 5 rows verified\n"
    assert trail.purge_events() == []  # nothing left to remove


def test_events_are_kept_forever_by_default(settings, db) -> None:
    assert settings.AUDIT_EVENT_RETENTION_DAYS is None
    old_event(5000, action=Action.LOGIN_FAILED, detail={"username": "x"})
    assert trail.purge_events() == []


def test_only_a_purge_shaped_update_of_an_event_gets_through_the_database(db) -> None:
    """Reliability #37: the database lets through only a retention purge's update of an event."""
    event = old_event(1, action=Action.LOGIN, target_label="bob", detail={"a": 1}, ip="10.0.0.4")
    legacy = legacy_event(1, action=Action.LOGIN, detail={"a": 1})
    marker = audit.record(Action.AUDIT_PURGED, None, detail={"seqs": [], "count": 0})
    for attempt in (
        lambda: AuditEvent.objects.filter(pk=event.pk).update(detail={}),  # label and ip stay
        lambda: AuditEvent.objects.filter(pk=event.pk).update(**audit.BLANK_EVENT, hash="f"),
        lambda: AuditEvent.objects.filter(pk=legacy.pk).update(**audit.BLANK_EVENT),
        lambda: AuditEvent.objects.filter(pk=marker.pk).update(**audit.BLANK_EVENT),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    AuditEvent.objects.filter(pk=event.pk).update(**audit.BLANK_EVENT)  # what purge_audit does
    event.refresh_from_db()
    assert (event.detail, event.target_label, event.ip) == ({}, "", None)


def test_event_content_removed_outside_a_purge_is_named(db) -> None:
    event = old_event(1, action=Action.LOGIN_FAILED, detail={"username": "x"}, ip="10.0.0.5")
    tamper("UPDATE assistant_auditevent SET detail = '{}', ip = NULL WHERE id = %s", [event.pk])
    with pytest.raises(CommandError, match="content removed without a purge"):
        verify()


def test_an_edited_event_detail_is_named(db) -> None:
    """Reliability #37: an edited event detail is named by verify_chain."""
    event = old_event(1, action=Action.LOGIN_FAILED, detail={"username": "x"})
    edit = """UPDATE assistant_auditevent SET detail = '{"username": "y"}' WHERE id = %s"""
    tamper(edit, [event.pk])
    with pytest.raises(CommandError, match=f"seq {event.seq} .*: content was edited"):
        verify()


# --- retention changes and purges ---------------------------------------------------------


def expired_record(people) -> QueryRecord:
    legal = [{"id": people.legal.pk, "name": "Legal"}]
    return finished_record(scope=legal, created_at=timezone.now() - timedelta(days=50))


def during_purge(monkeypatch, change) -> None:
    """Make `change` happen once the purge has read the policies it starts with."""
    original = trail.policies
    calls = []

    def policies(queryset):
        found = original(queryset)
        if not calls:
            change()
        calls.append(1)
        return found

    monkeypatch.setattr(trail, "policies", policies)


def test_a_hold_set_while_a_purge_runs_is_honoured(people, monkeypatch) -> None:
    Collection.objects.filter(pk=people.legal.pk).update(retention_days=30)
    record = expired_record(people)
    during_purge(
        monkeypatch, partial(collections.set_retention, people.legal, 30, True, people.owner)
    )
    assert trail.purge() == []
    record.refresh_from_db()
    assert record.purged_at is None and record.question


def test_a_shorter_retention_applies_from_the_next_purge(people, monkeypatch) -> None:
    Collection.objects.filter(pk=people.legal.pk).update(retention_days=100)
    record = expired_record(people)
    shorten = partial(collections.set_retention, people.legal, 10, False, people.owner)
    during_purge(monkeypatch, shorten)
    assert trail.purge() == []
    monkeypatch.undo()
    assert trail.purge() == [record.seq]
    assert "rows verified" in verify()


def test_changing_retention_or_a_hold_is_an_event_with_old_and_new_values(people) -> None:
    url = reverse("ingestion:collection_access", args=[people.legal.pk])
    form = {"managers": [people.owner.pk], "retention_days": "30", "legal_hold": "on"}
    assert login(people.outsider).post(url, form).status_code == 404
    assert not AuditEvent.objects.filter(action=Action.RETENTION_CHANGED).exists()
    owner = login(people.owner)
    owner.post(url, form)
    owner.post(url, {"managers": [people.owner.pk], "retention_days": "7"})  # hold lifted
    changes = AuditEvent.objects.filter(action=Action.RETENTION_CHANGED).order_by("seq")
    assert [(e.actor_username, e.detail) for e in changes] == [
        (
            "owner",
            {
                "before": {"retention_days": None, "legal_hold": False},
                "after": {"retention_days": 30, "legal_hold": True},
            },
        ),
        (
            "owner",
            {
                "before": {"retention_days": 30, "legal_hold": True},
                "after": {"retention_days": 7, "legal_hold": False},
            },
        ),
    ]


def test_a_large_purge_names_its_records_in_bounded_events(people, monkeypatch) -> None:
    monkeypatch.setattr(audit, "MAX_ITEMS", 2)
    Collection.objects.filter(pk=people.legal.pk).update(retention_days=30)
    records = [expired_record(people) for _ in range(5)]
    assert trail.purge() == [r.seq for r in records]
    markers = AuditEvent.objects.filter(action=Action.AUDIT_PURGED).order_by("seq")
    assert [m.detail["count"] for m in markers] == [2, 2, 1]
    assert "rows verified" in verify()
