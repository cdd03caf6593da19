from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ingestion", "0003_ingest_versions_tombstones")]

    operations = [
        migrations.AddField(
            model_name="document",
            name="lease_owner",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="document",
            name="lease_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
