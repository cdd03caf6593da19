"""Append-only audit tables: see assistant/triggers.py (also re-applied after every migrate)."""

from django.db import migrations


def install(apps, schema_editor) -> None:
    from assistant.audit import triggers

    triggers.install(schema_editor.connection)
    apps.get_model("assistant", "ChainHead").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("assistant", "0003_audit_chain")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
