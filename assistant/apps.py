from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "assistant"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from assistant import audit  # noqa: F401 (connects the login/logout receivers)

        post_migrate.connect(reinstall_triggers, sender=self)


def reinstall_triggers(sender: AppConfig, using: str, **kwargs: object) -> None:
    """A migration that rebuilds an audit table on SQLite drops its triggers: put them back.
    (flush sends this signal too; installing is idempotent.)"""
    from django.db import connections

    from assistant.audit import triggers

    triggers.install(connections[using])
