import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('assistant', '0007_retrieval_grounding'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='SsoIdentity',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('issuer', models.CharField(max_length=255)),
                ('subject', models.CharField(max_length=255)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sso_identities', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('issuer', 'subject'), name='sso_identity_unique')],
            },
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('login', 'Login'), ('login_failed', 'Login Failed'), ('logout', 'Logout'), ('access_denied', 'Access Denied'), ('collection_created', 'Collection Created'), ('grants_changed', 'Grants Changed'), ('retention_changed', 'Retention Changed'), ('group_created', 'Group Created'), ('membership_changed', 'Membership Changed'), ('roles_changed', 'Roles Changed'), ('user_deactivated', 'User Deactivated'), ('user_reactivated', 'User Reactivated'), ('sso_linked', 'SSO Linked'), ('upload', 'Upload'), ('document_opened', 'Document Opened'), ('reingest', 'Reingest'), ('delete', 'Delete'), ('audit_viewed', 'Audit Viewed'), ('audit_exported', 'Audit Exported'), ('audit_purged', 'Audit Purged')], db_index=True, max_length=32),
        ),
    ]
