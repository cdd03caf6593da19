"""PostgreSQL: TRUNCATE of an audit table is refused too. It fires no row trigger, so the
append-only triggers (assistant/audit/triggers.py) let it through; a statement trigger does not.
SQLite has no TRUNCATE: its DELETE without WHERE goes row by row, through the row triggers."""

from django.db import migrations

TABLES = ("assistant_auditevent", "assistant_queryrecord")
FUNCTION = """CREATE OR REPLACE FUNCTION enclave_audit_no_truncate() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit rows are append-only: TRUNCATE on % refused', TG_TABLE_NAME;
END $$ LANGUAGE plpgsql"""


def install(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:  # raw: the body holds a literal % sign
        cursor.execute(FUNCTION)
        for table in TABLES:
            cursor.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION enclave_audit_no_truncate()"
            )


def remove(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        cursor.execute("DROP FUNCTION IF EXISTS enclave_audit_no_truncate()")


class Migration(migrations.Migration):
    dependencies = [("assistant", "0015_batch_jobs")]

    operations = [migrations.RunPython(install, remove)]
