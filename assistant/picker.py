"""The chat's model picker: per conversation, among the models the policy allows for its scope
then (assistant/endpoints.py). What was picked is only a wish: each question uses it only if the
policy still allows it, so a pick the scope no longer allows is shown as not used."""

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest

from assistant import access, audit, endpoints, scope
from assistant.endpoints import Endpoint
from assistant.models import Conversation


@dataclass(frozen=True)
class Offer:
    models: list[Endpoint]  # allowed for the scope, the built-in first
    default: Endpoint
    auto: bool  # "Auto" is offered: an allowed model is marked for hard questions
    picked: str  # the conversation's pick: "" (the default), "auto" or a name

    def allows(self, name: str) -> bool:
        return name == "" or (name == endpoints.AUTO and self.auto) or self.named(name)

    def named(self, name: str) -> bool:
        return any(e.name == name for e in self.models)

    @property
    def unused(self) -> bool:
        """Picked, but the policy no longer allows it for the conversation's scope."""
        return not self.allows(self.picked)


def offered(user: access.User, conversation: Conversation | None) -> Offer:
    """The choice for a conversation (None: a new one, over everything the user reads)."""
    models = endpoints.allowed(list(scope.effective(user, conversation)))
    return Offer(
        models=models,
        default=endpoints.default(models),
        auto=endpoints.auto_offered(models),
        picked=conversation.model if conversation is not None else "",
    )


def pick(user: User, conversation: Conversation, name: str, request: HttpRequest) -> None:
    if name == conversation.model:
        return
    detail = {"before": conversation.model, "after": name}
    with transaction.atomic():
        conversation.model = name
        conversation.save(update_fields=["model"])
        audit.record(audit.Action.MODEL_PICKED, user, conversation, detail=detail, request=request)
