"""What answers cost: one Usage row per answer that reached a model (chat, API, batch), and the
groups' monthly token budgets checked before a question is asked."""

from collections.abc import Sequence
from datetime import datetime

from django.contrib.auth.models import Group, User
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext

from assistant.endpoints import Endpoint
from assistant.models import GroupBudget, QueryRecord, Usage
from ingestion.models import Collection


def record_usage(
    record: QueryRecord, user: User, collections: Sequence[Collection], endpoint: Endpoint
) -> Usage | None:
    """Called in the transaction that finalises the record; nothing when no model was asked."""
    if record.prompt_tokens is None and record.completion_tokens is None:
        return None
    prompt, completion = record.prompt_tokens or 0, record.completion_tokens or 0
    row = Usage.objects.create(
        created_at=record.created_at,
        user=user,
        username=user.get_username(),
        channel=record.channel,
        model=endpoint.name,
        location=endpoint.location,
        prompt_tokens=prompt,
        completion_tokens=completion,
        latency_ms=record.latency_ms,
        cost=endpoint.cost(prompt, completion),
        record=record,
    )
    row.groups.set(user.groups.all())
    row.collections.set(collections)
    return row


def month_start(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def tokens_used(group: Group, since: datetime) -> int:
    rows = Usage.objects.filter(groups=group, created_at__gte=since)
    total = rows.aggregate(n=Sum(F("prompt_tokens") + F("completion_tokens")))["n"]
    return int(total or 0)


def over_budget(user: User) -> str:
    """The message a user sees when one of their groups has spent its month's tokens, or ""."""
    since = month_start()
    for budget in GroupBudget.objects.filter(group__in=user.groups.all()).select_related("group"):
        if tokens_used(budget.group, since) >= budget.monthly_tokens:
            return gettext(
                "Your group %(group)s has used its %(tokens)s tokens for this month. "
                "Ask your administrator to raise its budget; it starts again on the 1st."
            ) % {"group": budget.group.name, "tokens": f"{budget.monthly_tokens:,}"}
    return ""
