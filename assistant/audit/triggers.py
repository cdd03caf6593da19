"""The database itself refuses UPDATE and DELETE on audit rows. Two exceptions, both narrow:
a pending query record is finalised once (it has no place in the chain yet), and retention may
blank a record's or an event's content while its hashes stay (purge_audit).

Installed after every `migrate` (post_migrate), idempotently: SQLite rebuilds a table to alter
it, which silently drops its triggers, so a later migration must never leave them behind.
"""

import hashlib

from django.db.backends.base.base import BaseDatabaseWrapper

TABLES = ("assistant_auditevent", "assistant_queryrecord")
PURGE = (
    "OLD.purged_at IS NULL AND NEW.purged_at IS NOT NULL AND NEW.seq = OLD.seq "
    "AND NEW.hash = OLD.hash AND NEW.prev_hash = OLD.prev_hash "
    "AND NEW.content_hash = OLD.content_hash AND NEW.question = '' AND NEW.answer = ''"
)
# Events chained before their content had its own hash (audit.NO_CONTENT) cannot be purged.
EVENT_PURGE = (
    "OLD.seq IS NOT NULL AND NEW.seq = OLD.seq AND NEW.hash = OLD.hash "
    "AND NEW.prev_hash = OLD.prev_hash AND NEW.content_hash = OLD.content_hash "
    f"AND OLD.content_hash <> '{hashlib.sha256(b'').hexdigest()}' "
    "AND OLD.action <> 'audit_purged' AND NEW.target_label = '' AND NEW.ip IS NULL"
)

POSTGRES = [
    f"""CREATE OR REPLACE FUNCTION enclave_audit_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'assistant_queryrecord' THEN
    IF OLD.seq IS NULL THEN RETURN NEW; END IF;
    IF {PURGE} AND NEW.prompt = '[]'::jsonb AND NEW.retrieved = '[]'::jsonb THEN
      RETURN NEW;
    END IF;
  END IF;
  IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'assistant_auditevent' THEN
    IF {EVENT_PURGE} AND NEW.detail = '{{}}'::jsonb THEN RETURN NEW; END IF;
  END IF;
  RAISE EXCEPTION 'audit rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END $$ LANGUAGE plpgsql""",
    *(
        statement
        for table in TABLES
        for statement in (
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION enclave_audit_append_only()",
        )
    ),
]

# SQLite has no session state a trigger could read; the (test-only) flush of a whole database
# inserts a row in enclave_audit_unlock first. The application never writes that table.
SQLITE = [
    "CREATE TABLE IF NOT EXISTS enclave_audit_unlock (reason TEXT)",
    # Replaced, not kept: its condition changed (event retention).
    "DROP TRIGGER IF EXISTS assistant_auditevent_no_update",
    f"""CREATE TRIGGER assistant_auditevent_no_update
    BEFORE UPDATE ON assistant_auditevent WHEN NOT EXISTS (SELECT 1 FROM enclave_audit_unlock)
      AND NOT coalesce({EVENT_PURGE} AND NEW.detail = '{{}}', 0)
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only: UPDATE refused'); END""",  # noqa: S608 (constants only)
    """CREATE TRIGGER IF NOT EXISTS assistant_auditevent_no_delete
    BEFORE DELETE ON assistant_auditevent WHEN NOT EXISTS (SELECT 1 FROM enclave_audit_unlock)
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only: DELETE refused'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS assistant_queryrecord_no_update
    BEFORE UPDATE ON assistant_queryrecord
    WHEN NOT EXISTS (SELECT 1 FROM enclave_audit_unlock) AND OLD.seq IS NOT NULL
      AND NOT ({PURGE} AND NEW.prompt = '[]' AND NEW.retrieved = '[]')
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only: UPDATE refused'); END""",  # noqa: S608 (constants only)
    """CREATE TRIGGER IF NOT EXISTS assistant_queryrecord_no_delete
    BEFORE DELETE ON assistant_queryrecord WHEN NOT EXISTS (SELECT 1 FROM enclave_audit_unlock)
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only: DELETE refused'); END""",
]


def install(connection: BaseDatabaseWrapper) -> None:
    statements = {"postgresql": POSTGRES, "sqlite": SQLITE}.get(connection.vendor)
    if statements is None:
        raise RuntimeError(f"append-only audit triggers are not written for {connection.vendor}")
    with connection.cursor() as cursor:  # raw: the bodies hold literal % signs
        for statement in statements:
            cursor.execute(statement)


def installed(connection: BaseDatabaseWrapper) -> int:
    """How many of the append-only triggers exist (4 on SQLite, 2 on PostgreSQL)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE 'assistant_%_no_%'"
            )
        else:
            cursor.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'assistant_%_append_only'"
            )
        return int(cursor.fetchone()[0])
