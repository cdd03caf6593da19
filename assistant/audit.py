"""record(): the one way audit events are written. Callers write them inside the same
transaction as the change they describe."""

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import models
from django.dispatch import receiver
from django.http import HttpRequest

from assistant.models import AuditEvent

Action = AuditEvent.Action


def client_ip(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def record(
    action: str,
    actor: User | AnonymousUser | None,
    target: models.Model | None = None,
    *,
    detail: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    label: str = "",
) -> AuditEvent:
    user = actor if isinstance(actor, User) else None
    return AuditEvent.objects.create(
        action=action,
        actor=user,
        actor_username=user.get_username() if user else "",
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=(label or str(target))[:300] if target is not None else label[:300],
        detail=detail or {},
        ip=client_ip(request),
    )


@receiver(user_logged_in)
def on_login(sender: object, request: HttpRequest, user: User, **kwargs: object) -> None:
    record(Action.LOGIN, user, user, request=request)


@receiver(user_logged_out)
def on_logout(sender: object, request: HttpRequest, user: User | None, **kwargs: object) -> None:
    if user is not None:
        record(Action.LOGOUT, user, user, request=request)


@receiver(user_login_failed)
def on_login_failed(
    sender: object, credentials: dict, request: HttpRequest | None = None, **kwargs: object
) -> None:
    # The password is never stored; the username tried is.
    username = str(credentials.get("username", ""))[:150]
    record(Action.LOGIN_FAILED, None, detail={"username": username}, request=request)
