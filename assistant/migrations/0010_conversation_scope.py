from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("assistant", "0009_answer_lifecycle")]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="scope",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
