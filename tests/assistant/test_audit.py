"""The audit trail: append-only in the database, hash-chained, verified, searched, exported,
purged by retention — and tampering with it directly in the database is always named."""

import json
import tracemalloc
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from assistant import audit
from assistant.audit import trail
from assistant.models import AuditEvent, QueryRecord
from ingestion import pipeline
from ingestion.models import Document
from tests.conftest import login, read_events
from tests.factories import PASSWORD, make_auditor, make_document, make_pdf

pytestmark = pytest.mark.embedded
Action = AuditEvent.Action


def events(n: int) -> list[AuditEvent]:
    return [audit.record(Action.LOGIN_FAILED, None, detail={"username": f"u{i}"}) for i in range(n)]


def finished_record(**fields: object) -> QueryRecord:
    record = QueryRecord.objects.create(
        username=fields.pop("username", "alice"),
        question=fields.pop("question", "Where is the policy?"),
        scope=fields.pop("scope", []),
        **fields,
    )
    with transaction.atomic():
        audit.finalize(record, answer="Here.", outcome=QueryRecord.Outcome.ANSWERED)
    return record


def tamper(sql: str, params: list | None = None) -> None:
    """Edit the database the way an attacker with a superuser connection would: around the
    append-only triggers."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")  # triggers off
        else:
            cursor.execute("INSERT INTO enclave_audit_unlock VALUES ('attack')")
        try:
            cursor.execute(sql, params or [])
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = DEFAULT")
            else:
                cursor.execute("DELETE FROM enclave_audit_unlock")


def verify(*args: str) -> str:
    out = StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue()


def broken(*args: str) -> str:
    with pytest.raises(CommandError) as failure:
        verify(*args)
    return str(failure.value)


def test_an_intact_chain_verifies(db) -> None:
    events(3)
    finished_record()
    assert verify() == "audit chain OK: 4 rows verified\n"


def test_the_database_refuses_to_change_or_delete_audit_rows(db) -> None:
    """Reliability #37: UPDATE or DELETE of audit rows as the app is refused by the database."""
    [event] = events(1)
    record = finished_record()
    for attempt in (
        lambda: AuditEvent.objects.filter(pk=event.pk).update(action="login"),
        lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
        lambda: QueryRecord.objects.filter(pk=record.pk).update(answer="nicer answer"),
        lambda: QueryRecord.objects.filter(pk=record.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    assert QueryRecord.objects.get(pk=record.pk).answer == "Here."


def test_the_triggers_survive_every_migration(db) -> None:
    """Reliability #37: the append-only triggers are still there after every migration."""
    from assistant.audit import triggers

    # SQLite drops a table's triggers when a migration rebuilds it; post_migrate restores them.
    assert triggers.installed(connection) == (4 if connection.vendor == "sqlite" else 2)


def test_a_pending_record_is_finalised_exactly_once(db) -> None:
    record = QueryRecord.objects.create(username="alice", question="Q")
    with transaction.atomic():
        audit.finalize(record, answer="A", outcome=QueryRecord.Outcome.ANSWERED)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        audit.finalize(record, answer="B", outcome=QueryRecord.Outcome.ANSWERED)


def test_an_edited_event_is_named(db) -> None:
    """Reliability #37: a row edited around the triggers is named by verify_chain."""
    victim = events(4)[1]
    tamper("UPDATE assistant_auditevent SET actor_username = 'nobody' WHERE id = %s", [victim.pk])
    message = broken()
    assert f"seq {victim.seq} (assistant.auditevent id {victim.pk}): row was edited" in message
    assert "after 1 good rows" in message


def test_an_edited_answer_is_named(db) -> None:
    """Reliability #37: an edited answer is named by verify_chain."""
    events(1)
    record = finished_record()
    tamper("UPDATE assistant_queryrecord SET answer = 'rewritten' WHERE id = %s", [record.pk])
    assert f"seq {record.seq} (assistant.queryrecord id {record.pk}): content was edited" in (
        broken()
    )


def test_a_deleted_row_is_named(db) -> None:
    """Reliability #37: a deleted row is named by verify_chain."""
    rows = events(5)
    tamper("DELETE FROM assistant_auditevent WHERE id = %s", [rows[2].pk])
    assert "expected seq 3: rows 3..3 are missing (deleted)" in broken()


def test_reordered_rows_are_named(db) -> None:
    """Reliability #37: reordered rows are named by verify_chain."""
    a, b = events(4)[1:3]
    tamper("UPDATE assistant_auditevent SET seq = -1 WHERE id = %s", [a.pk])
    tamper("UPDATE assistant_auditevent SET seq = %s WHERE id = %s", [a.seq, b.pk])
    tamper("UPDATE assistant_auditevent SET seq = %s WHERE id = %s", [b.seq, a.pk])
    assert f"seq {a.seq} (assistant.auditevent id {b.pk})" in broken()


def test_a_truncated_tail_is_caught_against_the_checkpoint(db, tmp_path) -> None:
    """Reliability #37: deleting the last rows is caught against the last signed checkpoint."""
    rows = events(5)
    checkpoint = tmp_path / "head.json"
    call_command("audit_checkpoint", str(checkpoint), stdout=StringIO())
    tamper("DELETE FROM assistant_auditevent WHERE seq >= %s", [rows[3].seq])
    assert verify() == "audit chain OK: 3 rows verified\n"  # alone, a clean cut looks intact
    assert "truncated: the chain ends at seq 3; the checkpoint has seq 5" in broken(
        "--checkpoint", str(checkpoint)
    )


def test_a_forged_checkpoint_is_refused(db, tmp_path) -> None:
    """Reliability #37: a forged checkpoint is refused."""
    events(2)
    checkpoint = tmp_path / "head.json"
    call_command("audit_checkpoint", str(checkpoint), stdout=StringIO())
    body = json.loads(checkpoint.read_text())
    body["seq"] = 1
    checkpoint.write_text(json.dumps(body))
    assert "not a checkpoint signed by this installation" in broken("--checkpoint", str(checkpoint))


def test_content_removed_outside_a_purge_is_named(db) -> None:
    record = finished_record()
    tamper(
        "UPDATE assistant_queryrecord SET question = '', answer = '', purged_at = %s WHERE id = %s",
        [timezone.now(), record.pk],
    )
    assert "content removed without a purge" in broken()


def test_purge_blanks_expired_content_and_the_chain_still_verifies(people) -> None:
    people.legal.retention_days = 30
    people.legal.save()
    people.sales.retention_days = 30
    people.sales.legal_hold = True
    people.sales.save()
    old = timezone.now() - timedelta(days=40)
    legal = [{"id": people.legal.pk, "name": "Legal"}]
    expired = finished_record(scope=legal, created_at=old)
    recent = finished_record(scope=legal)
    held = finished_record(scope=[*legal, {"id": people.sales.pk, "name": "Sales"}], created_at=old)
    kept = finished_record(scope=[], created_at=old)
    out = StringIO()
    call_command("purge_audit", stdout=out)
    assert out.getvalue() == (
        "closed 0 abandoned query record(s)\npurged 1 query record(s)\npurged 0 event(s)\n"
    )
    expired.refresh_from_db()
    assert expired.purged_at and expired.question == "" and expired.answer == ""
    assert expired.hash and expired.username == "alice"
    for record in (recent, held, kept):
        record.refresh_from_db()
        assert record.purged_at is None and record.question
    assert "rows verified" in verify()
    assert AuditEvent.objects.get(action=Action.AUDIT_PURGED).detail["seqs"] == [expired.seq]


def test_deleting_people_and_documents_keeps_their_history(people, fake_llm) -> None:
    document = make_document(people.legal, "a.pdf", make_pdf(["Retention is ten years."]))
    pipeline.ingest(document.pk)
    read_events(login(people.teammate).post(reverse("chat:ask_new"), {"question": "Retention?"}))
    Document.objects.get(pk=document.pk).delete()
    people.teammate.delete()
    record = QueryRecord.objects.get()
    assert record.username == "teammate" and record.document_ids == [document.pk]
    assert "rows verified" in verify()


def test_a_scripted_session_leaves_exactly_the_expected_trail(people, fake_llm, client) -> None:
    """Reliability #36: a scripted session (sign-in, three questions, a download, a denied access,
    sign-out) leaves exactly the matching events and records; the auditor's CSV and JSONL exports
    reproduce them and are themselves logged."""
    policy = make_document(people.legal, "policy.pdf", make_pdf(["Refunds take 14 days."]))
    secret = make_document(people.sales, "sales.txt", b"Sales only")
    pipeline.ingest(policy.pk)
    start = AuditEvent.objects.count()

    assert client.post(reverse("login"), {"username": "teammate", "password": PASSWORD}).url
    for question in ("Refunds?", "How long do refunds take?", "Who approves refunds?"):
        read_events(client.post(reverse("chat:ask_new"), {"question": question}))
    assert client.get(reverse("ingestion:document_file", args=[policy.pk])).status_code == 200
    assert client.get(reverse("ingestion:document_file", args=[secret.pk])).status_code == 404
    client.post(reverse("logout"))

    trail_events = list(AuditEvent.objects.order_by("seq")[start:])
    assert [(e.action, e.actor_username) for e in trail_events] == [
        (Action.LOGIN, "teammate"),
        (Action.DOCUMENT_OPENED, "teammate"),
        (Action.ACCESS_DENIED, "teammate"),
        (Action.LOGOUT, "teammate"),
    ]
    assert trail_events[2].target_id == str(secret.pk)
    records = list(QueryRecord.objects.order_by("seq"))
    assert [r.question for r in records] == [
        "Refunds?",
        "How long do refunds take?",
        "Who approves refunds?",
    ]
    assert all(r.outcome == "answered" and r.document_ids == [policy.pk] for r in records)
    assert all(r.group_names == ["Legal"] and r.scope[0]["name"] == "Legal" for r in records)

    auditor = login(make_auditor())
    page = auditor.get(reverse("audit:index"), {"user": "teammate"}).content.decode()
    assert "3 records" in page and "How long do refunds take?" in page
    csv = b"".join(auditor.get(reverse("audit:export", args=["csv"])).streaming_content)
    assert csv.decode().count("\n") == 4  # header + three records
    lines = b"".join(
        auditor.get(reverse("audit:export", args=["jsonl"]), {"user": "teammate"}).streaming_content
    ).splitlines()
    assert [json.loads(line)["question"] for line in lines][0] == "Who approves refunds?"
    assert json.loads(lines[0])["retrieved"][0]["text"].startswith("Refunds take 14 days.")
    exported = AuditEvent.objects.filter(action=Action.AUDIT_EXPORTED, actor_username="auditor")
    assert [e.detail["format"] for e in exported.order_by("seq")] == ["csv", "jsonl"]
    assert AuditEvent.objects.filter(action=Action.AUDIT_VIEWED).count() == 1
    assert "rows verified" in verify()


def test_auditors_filter_and_page_through_records(people) -> None:
    legal = [{"id": people.legal.pk, "name": "Legal"}]
    for n in range(60):
        finished_record(
            username="bob" if n % 2 else "alice",
            question=f"question {n}",
            scope=legal if n < 10 else [],
            collection_keys=audit.keys([people.legal.pk] if n < 10 else []),
            document_keys=audit.keys([77] if n == 3 else []),
            group_keys="|Legal|" if n < 5 else "|",
        )
    client = login(make_auditor())
    url = reverse("audit:index")
    assert "30 records" in client.get(url, {"user": "bob"}).content.decode()
    assert "10 records" in client.get(url, {"collection": people.legal.pk}).content.decode()
    assert "5 records" in client.get(url, {"group": "Legal"}).content.decode()
    assert ">1 record<" in client.get(url, {"document": 77}).content.decode()
    assert ">1 record<" in client.get(url, {"text": "question 42"}).content.decode()
    today = timezone.now().date().isoformat()
    assert "60 records" in client.get(url, {"since": today, "until": today}).content.decode()
    assert "0 records" in client.get(url, {"outcome": "error"}).content.decode()
    more = client.get(url, {"page": 2}, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in more and more.count("<tr>") == 10  # the last 10 of 60, no "more" row
    bad = client.get(url, {"since": "yesterday"}, follow=True).content.decode()
    assert "since must be a date" in bad


def test_a_record_page_shows_what_was_sent_and_links_only_readable_documents(
    people, fake_llm
) -> None:
    document = make_document(people.legal, "p.pdf", make_pdf(["Refunds take 14 days."]))
    pipeline.ingest(document.pk)
    read_events(login(people.teammate).post(reverse("chat:ask_new"), {"question": "Refunds?"}))
    record = QueryRecord.objects.get()
    auditor = make_auditor()
    page = login(auditor).get(reverse("audit:record", args=[record.pk])).content.decode()
    assert "Refunds take 14 days." in page and "Employees get 27 days" in page
    assert document.sha256 in page
    assert reverse("ingestion:document_file", args=[document.pk]) not in page  # no read grant
    auditor.groups.add(people.legal.groups.get())
    page = login(auditor).get(reverse("audit:record", args=[record.pk])).content.decode()
    assert reverse("ingestion:document_file", args=[document.pk]) in page


def test_reverse_provenance_lists_answers_after_the_document_is_gone(people, fake_llm) -> None:
    document = make_document(people.legal, "wrong.pdf", make_pdf(["Refunds take 99 days."]))
    pipeline.ingest(document.pk)
    client = login(people.teammate)
    for question in ("Refunds?", "Refund time?"):
        read_events(client.post(reverse("chat:ask_new"), {"question": question}))
    pk = document.pk
    Document.objects.get(pk=pk).delete()
    page = login(make_auditor()).get(reverse("audit:document", args=[pk])).content.decode()
    assert "2 answers" in page and "wrong" in page and "has been deleted" in page


def test_exports_stream_without_loading_every_row(db, client) -> None:
    text = "x" * 4000
    QueryRecord.objects.bulk_create(
        QueryRecord(username="alice", question=f"q{n}", answer=text) for n in range(3000)
    )
    response = login(make_auditor()).get(reverse("audit:export", args=["jsonl"]))
    assert response.streaming
    tracemalloc.start()
    total = sum(len(chunk) for chunk in response.streaming_content)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total > 12_000_000
    assert peak < total / 2, (peak, total)


def test_bad_filters_are_refused_in_exports(db) -> None:
    response = login(make_auditor()).get(reverse("audit:export", args=["csv"]), {"document": "x"})
    assert response.status_code == 400 and b"document must be a number" in response.content


def test_expired_is_driven_by_the_longest_retention_of_the_scope(people) -> None:
    people.legal.retention_days, people.sales.retention_days = 10, 100
    people.legal.save()
    people.sales.save()
    scope = [{"id": people.legal.pk, "name": "Legal"}, {"id": people.sales.pk, "name": "Sales"}]
    record = QueryRecord(created_at=timezone.now() - timedelta(days=50), scope=scope)
    assert trail.expired([record], timezone.now()) == []
    record.created_at -= timedelta(days=60)
    assert trail.expired([record], timezone.now()) == [record]


def test_answers_that_never_finished_are_closed_into_the_chain(db) -> None:
    old = QueryRecord.objects.create(
        username="alice", question="Q", created_at=timezone.now() - timedelta(hours=2)
    )
    fresh = QueryRecord.objects.create(username="alice", question="still streaming")
    assert trail.close_abandoned() == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.outcome, old.seq) == ("error", 1) and "never finished" in old.error
    assert fresh.seq is None and fresh.outcome == "pending"
    assert verify() == "audit chain OK: 1 rows verified\n"


def test_csv_export_defuses_spreadsheet_formulas_and_jsonl_stays_exact(db) -> None:
    question, answer = '=HYPERLINK("http://evil","x")', "-2+3"
    QueryRecord.objects.create(username="@alice", question=question, answer=answer)
    auditor = login(make_auditor())
    csv_export = b"".join(auditor.get(reverse("audit:export", args=["csv"])).streaming_content)
    [_, line] = csv_export.decode().splitlines()
    assert "'@alice" in line and '"\'=HYPERLINK(""http://evil"",""x"")"' in line
    assert ",'-2+3," in line
    jsonl = b"".join(auditor.get(reverse("audit:export", args=["jsonl"])).streaming_content)
    [record] = [json.loads(raw) for raw in jsonl.splitlines()]
    assert (record["username"], record["question"], record["answer"]) == (
        "@alice",
        question,
        answer,
    )
