from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "assistant"

    def ready(self) -> None:
        from assistant import audit  # noqa: F401 (connects the login/logout receivers)
