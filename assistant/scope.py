"""What a conversation searches: the collections picked for it, narrowed at every question to
those the user can read then (assistant/access.py), so a revoked grant drops out at once."""

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from assistant import access, audit, params
from assistant.models import Conversation
from ingestion.models import Collection


def effective(user: access.User, conversation: Conversation | None) -> QuerySet[Collection]:
    readable = access.collections_visible_to(user).order_by("id")
    if conversation is None or conversation.scope is None:
        return readable
    return readable.filter(pk__in=conversation.scope)


def chosen(user: User, values: list[str], request: HttpRequest | None = None) -> list[int] | None:
    """The readable collections among ids the client sent; None when it sent none (search all
    that is readable). The others are ignored and kept as a denied access."""
    if not values:
        return None
    picked = sorted(set(params.numbers(values)))
    readable = set(access.collections_visible_to(user).values_list("pk", flat=True))
    denied = [pk for pk in picked if pk not in readable]
    kept = [pk for pk in picked if pk in readable]
    if denied:
        # What was asked for beside what it was narrowed to: the event alone tells the story.
        detail = {
            "reason": "unreadable collections ignored",
            "collections": denied,
            "requested": picked,
            "effective": kept,
        }
        audit.record(audit.Action.ACCESS_DENIED, user, detail=detail, request=request)
    return kept


def named(collections: Iterable[Collection]) -> list[dict]:
    return [{"id": c.pk, "name": c.name} for c in collections]


def change(
    user: User, conversation: Conversation, ids: list[int] | None, request: HttpRequest
) -> None:
    if ids == conversation.scope:
        return
    before = named(effective(user, conversation))
    with transaction.atomic():
        conversation.scope = ids
        conversation.save(update_fields=["scope"])
        detail = {"before": before, "after": named(effective(user, conversation))}
        audit.record(audit.Action.SCOPE_CHANGED, user, conversation, detail=detail, request=request)
