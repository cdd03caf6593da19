from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("assistant", "0011_feedback")]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="pinned",
            field=models.BooleanField(default=False),
        ),
        # The audit actions added by 0009-0012, listed once: choices live in no column.
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
                    ("feedback_given", "Feedback Given"),
                    ("feedback_changed", "Feedback Changed"),
                    ("starters_changed", "Starters Changed"),
                    ("scope_changed", "Scope Changed"),
                ],
                db_index=True,
                max_length=32,
            ),
        ),
    ]
