import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("assistant", "0010_conversation_scope"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
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
                    ("scope_changed", "Scope Changed"),
                ],
                db_index=True,
                max_length=32,
            ),
        ),
        migrations.CreateModel(
            name="Feedback",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "rating",
                    models.CharField(
                        choices=[("up", "Helpful"), ("down", "Not helpful")], max_length=8
                    ),
                ),
                ("reasons", models.JSONField(blank=True, default=list)),
                ("comment", models.TextField(blank=True, max_length=1000)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "record",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="feedback",
                        to="assistant.queryrecord",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="feedback",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-updated_at", "-id"],
                "constraints": [
                    models.UniqueConstraint(fields=("record", "user"), name="feedback_one_per_user")
                ],
            },
        ),
    ]
