"""The database itself refuses UPDATE and DELETE on audit rows. Two exceptions, both narrow:
a pending query record is finalised once (it has no place in the chain yet), and retention may
blank a record's content while its hashes stay (purge_audit)."""

from django.db import migrations

TABLES = ("assistant_auditevent", "assistant_queryrecord")
PURGE = (
    "OLD.purged_at IS NULL AND NEW.purged_at IS NOT NULL AND NEW.seq = OLD.seq "
    "AND NEW.hash = OLD.hash AND NEW.prev_hash = OLD.prev_hash "
    "AND NEW.content_hash = OLD.content_hash AND NEW.question = '' AND NEW.answer = ''"
)

POSTGRES = f"""
CREATE OR REPLACE FUNCTION enclave_audit_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'assistant_queryrecord' THEN
    IF OLD.seq IS NULL THEN RETURN NEW; END IF;
    IF {PURGE} AND NEW.prompt = '[]'::jsonb AND NEW.retrieved = '[]'::jsonb THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'audit rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END $$ LANGUAGE plpgsql;
""" + "".join(
    f"""
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
FOR EACH ROW EXECUTE FUNCTION enclave_audit_append_only();
"""
    for table in TABLES
)

# SQLite has no session state a trigger could read; the (test-only) flush of a whole database
# inserts a row in enclave_audit_unlock first. The application never writes that table.
SQLITE = [
    "CREATE TABLE IF NOT EXISTS enclave_audit_unlock (reason TEXT)",
    """CREATE TRIGGER assistant_auditevent_no_update BEFORE UPDATE ON assistant_auditevent
    WHEN NOT EXISTS (SELECT 1 FROM enclave_audit_unlock)
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER assistant_auditevent_no_delete BEFORE DELETE ON assistant_auditevent
    WHEN NOT EXISTS (SELECT 1 FROM enclave_audit_unlock)
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only: DELETE refused'); END""",
    f"""CREATE TRIGGER assistant_queryrecord_no_update BEFORE UPDATE ON assistant_queryrecord
    WHEN NOT EXISTS (SELECT 1 FROM enclave_audit_unlock) AND OLD.seq IS NOT NULL
      AND NOT ({PURGE} AND NEW.prompt = '[]' AND NEW.retrieved = '[]')
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER assistant_queryrecord_no_delete BEFORE DELETE ON assistant_queryrecord
    WHEN NOT EXISTS (SELECT 1 FROM enclave_audit_unlock)
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only: DELETE refused'); END""",
]


def install(apps, schema_editor) -> None:  # noqa: ANN001
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:  # raw: the body has literal % signs
            cursor.execute(POSTGRES)
    elif vendor == "sqlite":
        for statement in SQLITE:
            schema_editor.execute(statement)
    else:
        raise RuntimeError(f"append-only audit triggers are not written for {vendor}")
    apps.get_model("assistant", "ChainHead").objects.get_or_create(pk=1)


def uninstall(apps, schema_editor) -> None:  # noqa: ANN001
    for table in TABLES:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            for kind in ("update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{kind}")


class Migration(migrations.Migration):
    dependencies = [("assistant", "0003_audit_chain")]

    operations = [migrations.RunPython(install, uninstall)]
