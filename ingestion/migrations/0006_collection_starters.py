from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ingestion", "0005_document_pages")]

    operations = [
        migrations.AddField(
            model_name="collection",
            name="starters",
            field=models.TextField(blank=True),
        ),
    ]
