"""What answers cost: one Usage row per answer that reached a model (chat, API, batch), and the
groups' monthly token budgets checked before a question is asked."""

import csv
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import Avg, Count, DecimalField, F, Prefetch, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext

from assistant import access, audit, endpoints, people
from assistant.audit import trail
from assistant.endpoints import Endpoint
from assistant.models import GroupBudget, ModelEndpoint, QueryRecord, Usage
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


# --- the usage page: who may read which rows, the period, figures, chart, CSV, budgets -------

FIGURES = ("questions", "prompt", "completion", "tokens", "latency", "cost")
CSV_COLUMNS = (
    "created_at", "username", "groups", "collections", "channel", "model", "location",
    "prompt_tokens", "completion_tokens", "latency_ms", "cost",
)  # fmt: skip
LONGEST_PERIOD_DAYS = 731
CHART_HEIGHT, BAR_WIDTH, BAR_GAP = 120, 10, 2


def may_view(user: access.User) -> bool:
    """Superusers read all usage; a collection admin, usage that touched a collection of theirs."""
    return bool(user.is_active) and (
        user.is_superuser or access.collections_managed_by(user).exists()
    )


def may_set_budgets(user: access.User) -> bool:
    return bool(user.is_active and user.is_superuser)


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    month: str = ""  # "YYYY-MM" when the period is a calendar month

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(n) for n in range((self.end - self.start).days + 1)]

    @property
    def is_this_month(self) -> bool:
        return self.month == month_start().strftime("%Y-%m")

    def bounds(self) -> tuple[datetime, datetime]:
        """Aware datetimes in the current time zone: [start, day after end)."""
        after = self.end + timedelta(1)
        return (
            timezone.make_aware(datetime.combine(self.start, time.min)),
            timezone.make_aware(datetime.combine(after, time.min)),
        )


def period_of(params: Mapping[str, str]) -> Period:
    """A date range (since/until) when either is given, else a month (default: this one)."""
    since, until = params.get("since", "").strip(), params.get("until", "").strip()
    if since or until:
        end = trail.parse_day(until, "until") if until else timezone.localdate()
        start = trail.parse_day(since, "since") if since else end.replace(day=1)
        if start > end or (end - start).days >= LONGEST_PERIOD_DAYS:
            raise trail.BadFilter(
                gettext("The period must run forwards and last at most %(days)s days.")
                % {"days": LONGEST_PERIOD_DAYS}
            )
        return Period(start, end)
    month = params.get("month", "").strip() or month_start().strftime("%Y-%m")
    try:
        start = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise trail.BadFilter(gettext("month must be a month like 2026-11")) from None
    after = (start + timedelta(32)).replace(day=1)
    return Period(start, after - timedelta(1), month)


def shown_collections(user: access.User, params: Mapping[str, str]) -> QuerySet[Collection]:
    """The collections the viewer reads figures of: those they manage (all, for a superuser),
    narrowed to the one picked."""
    found = Collection.objects.all() if user.is_superuser else access.collections_managed_by(user)
    if value := params.get("collection", "").strip():
        found = found.filter(pk=trail.parse_id(value, "collection"))
    return found.order_by("name")


def search(user: access.User, params: Mapping[str, str], period: Period) -> QuerySet[Usage]:
    """The usage rows the viewer may read that match the filters. A subquery of ids keeps each
    row once however many of the viewer's collections it touched."""
    start, end = period.bounds()
    found = Usage.objects.filter(created_at__gte=start, created_at__lt=end)
    if value := params.get("model", "").strip():
        found = found.filter(model=value)
    if not user.is_superuser or params.get("collection", "").strip():
        found = found.filter(collections__in=shown_collections(user, params))
    return Usage.objects.filter(pk__in=found.values("pk"))


def figures(prefix: str = "") -> dict[str, Any]:
    """The aggregates of each table's row; prefix reaches Usage from a through table."""
    prompt, completion = F(f"{prefix}prompt_tokens"), F(f"{prefix}completion_tokens")
    return {
        "questions": Count(f"{prefix}pk" if prefix else "pk"),
        "prompt": Coalesce(Sum(prompt), 0),
        "completion": Coalesce(Sum(completion), 0),
        "tokens": Coalesce(Sum(prompt + completion), 0),
        "latency": Avg(f"{prefix}latency_ms"),
        "cost": Coalesce(Sum(f"{prefix}cost"), Value(Decimal(0)), output_field=DecimalField()),
    }


def totals(rows: QuerySet[Usage]) -> dict[str, Any]:
    return rows.aggregate(**figures())


def tables(rows: QuerySet[Usage], collections: QuerySet[Collection]) -> dict[str, list[dict]]:
    """Figures grouped by user, group, collection (only those shown) and model, most tokens
    first, and by day. A row counts once in each of its groups and collections."""
    busiest = ("-tokens", "label")
    groups = Usage.groups.through.objects.filter(usage__in=rows)
    in_collections = Usage.collections.through.objects.filter(
        usage__in=rows, collection__in=collections
    )
    return {
        "user": list(rows.values(label=F("username")).annotate(**figures()).order_by(*busiest)),
        "group": list(
            groups.values(label=F("group__name")).annotate(**figures("usage__")).order_by(*busiest)
        ),
        "collection": list(
            in_collections.values(label=F("collection__name"))
            .annotate(**figures("usage__"))
            .order_by(*busiest)
        ),
        "model": list(rows.values(label=F("model")).annotate(**figures()).order_by(*busiest)),
        "day": list(
            rows.annotate(day=TruncDate("created_at"))
            .values(label=F("day"))
            .annotate(**figures())
            .order_by("label")
        ),
    }


def saved(rows: QuerySet[Usage]) -> list[dict]:
    """What the on-premises tokens would have cost at each enabled external model's prices."""
    local = rows.filter(location=ModelEndpoint.Location.ON_PREMISES).aggregate(
        prompt=Coalesce(Sum("prompt_tokens"), 0), completion=Coalesce(Sum("completion_tokens"), 0)
    )
    externals = ModelEndpoint.objects.filter(
        enabled=True, location=ModelEndpoint.Location.EXTERNAL
    ).order_by("name")
    return [
        {"model": row.name, "cost": endpoints.of(row).cost(local["prompt"], local["completion"])}
        | local
        for row in externals
    ]


def chart(days: list[dict], period: Period) -> dict[str, Any]:
    """Tokens per day as bar geometry for an inline SVG (prompt below, completion on top):
    drawn on the server, so the page needs no script and no style attribute."""
    by_day = {d["label"]: d for d in days}
    peak = max((d["tokens"] for d in days), default=0) or 1
    bars = []
    for n, day in enumerate(period.days):
        figures_of = by_day.get(day, {"prompt": 0, "completion": 0, "tokens": 0})
        prompt_h = round(figures_of["prompt"] * CHART_HEIGHT / peak, 1)
        completion_h = round(figures_of["completion"] * CHART_HEIGHT / peak, 1)
        bars.append(
            {
                "day": day,
                "x": n * (BAR_WIDTH + BAR_GAP),
                "prompt_y": round(CHART_HEIGHT - prompt_h, 1),
                "prompt_h": prompt_h,
                "completion_y": round(CHART_HEIGHT - prompt_h - completion_h, 1),
                "completion_h": completion_h,
                "tokens": figures_of["tokens"],
            }
        )
    width = max(len(bars) * (BAR_WIDTH + BAR_GAP) - BAR_GAP, 1)
    return {"bars": bars, "width": width, "height": CHART_HEIGHT, "bar_width": BAR_WIDTH}


def csv_lines(rows: QuerySet[Usage], collections: QuerySet[Collection]) -> Iterator[bytes]:
    """One line per answer; a collection admin sees only their collections' names."""
    writer = csv.writer(trail.Echo())
    yield writer.writerow(CSV_COLUMNS).encode()
    found = rows.order_by("created_at", "pk").prefetch_related(
        "groups", Prefetch("collections", queryset=collections)
    )
    for row in found.iterator(chunk_size=200):
        values = {
            "created_at": row.created_at.isoformat(),
            "username": row.username,
            "groups": sorted(g.name for g in row.groups.all()),
            "collections": sorted(c.name for c in row.collections.all()),
            "channel": row.channel,
            "model": row.model,
            "location": row.location,
            "prompt_tokens": row.prompt_tokens,
            "completion_tokens": row.completion_tokens,
            "latency_ms": row.latency_ms,
            "cost": row.cost,
        }
        yield writer.writerow([trail.cell(values[c]) for c in CSV_COLUMNS]).encode()


MAX_BUDGET = 2**63 - 1  # PositiveBigIntegerField's largest value


class BudgetError(ValueError):
    pass


def parse_budget(value: str) -> int | None:
    """The tokens a month typed in the form; empty: no budget."""
    value = value.strip().replace(",", "").replace("_", "")
    if not value:
        return None
    if not value.isdigit() or int(value) > MAX_BUDGET:
        raise BudgetError(gettext("A budget is a whole number of tokens, or empty for none."))
    return int(value)


def set_budget(
    group: Group, monthly_tokens: int | None, actor: User, request: HttpRequest | None = None
) -> None:
    """Set (None: remove) a group's monthly token budget, audited in the same transaction;
    setting the same budget again changes nothing."""
    with transaction.atomic():
        budget = GroupBudget.objects.select_for_update().filter(group=group).first()
        before = budget.monthly_tokens if budget else None
        if before == monthly_tokens:
            return
        if monthly_tokens is None:
            GroupBudget.objects.filter(group=group).delete()
        else:
            GroupBudget.objects.update_or_create(
                group=group, defaults={"monthly_tokens": monthly_tokens}
            )
        detail = {"before": before, "after": monthly_tokens}
        audit.record(audit.Action.BUDGET_CHANGED, actor, group, detail=detail, request=request)


def budget_report() -> list[dict]:
    """Every plain group with its budget (None: none) and the tokens it used this month."""
    since = month_start()
    budgets = dict(GroupBudget.objects.values_list("group_id", "monthly_tokens"))
    report = []
    for group in people.plain_groups():
        used, budget = tokens_used(group, since), budgets.get(group.pk)
        over = budget is not None and used >= budget
        report.append({"group": group, "budget": budget, "used": used, "over": over})
    return report
