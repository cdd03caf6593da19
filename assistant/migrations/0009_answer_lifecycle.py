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
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("login", "Login"),
                    ("login_failed", "Login Failed"),
                    ("logout", "Logout"),
                    ("access_denied", "Access Denied"),
                    ("collection_created", "Collection Created"),
                    ("grants_changed", "Grants Changed"),
                    ("retention_changed", "Retention Changed"),
                    ("group_created", "Group Created"),
                    ("membership_changed", "Membership Changed"),
                    ("roles_changed", "Roles Changed"),
                    ("user_deactivated", "User Deactivated"),
                    ("user_reactivated", "User Reactivated"),
                    ("sso_linked", "SSO Linked"),
                    ("upload", "Upload"),
                    ("document_opened", "Document Opened"),
                    ("reingest", "Reingest"),
                    ("delete", "Delete"),
                    ("audit_viewed", "Audit Viewed"),
                    ("audit_exported", "Audit Exported"),
                    ("audit_purged", "Audit Purged"),
                    ("answer_copied", "Answer Copied"),
                ],
                db_index=True,
                max_length=32,
            ),
        ),
    ]
