from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("assistant", "0008_sso_identity")]

    operations = [
        migrations.AlterField(
            model_name="queryrecord",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("answered", "Answered"),
                    ("refused", "Refused"),
                    ("denied", "Denied"),
                    ("error", "Error"),
                    ("stopped", "Stopped"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="queryrecord",
            name="regenerates_ref",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="queryrecord",
            name="edits_ref",
            field=models.BigIntegerField(blank=True, null=True),
        ),
    ]
