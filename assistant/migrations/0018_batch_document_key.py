"""Batch results keep their document's key (collection, folder, file name), so runs compare by
document across its versions (a new version is a new row). Rows whose document still exists
get theirs; those of documents already gone keep "" and compare by row."""

from django.db import migrations, models


def fill_keys(apps, schema_editor) -> None:
    BatchResult = apps.get_model("assistant", "BatchResult")
    rows = BatchResult.objects.filter(document__isnull=False, document_key="")
    for row in rows.select_related("document").iterator():
        document = row.document
        label = document.original_name
        if document.path:
            label = f"{document.path}/{label}"
        row.document_key = f"{document.collection_id}:{label}"
        row.save(update_fields=["document_key"])


class Migration(migrations.Migration):
    dependencies = [
        ("assistant", "0017_models_and_policy"),
        ("ingestion", "0003_ingest_versions_tombstones"),
    ]

    operations = [
        migrations.AddField(
            model_name="batchresult",
            name="document_key",
            field=models.CharField(blank=True, max_length=850),
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
    ]
