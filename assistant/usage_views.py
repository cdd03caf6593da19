"""The usage and cost page: collection admins read the usage of their collections,
superusers all of it and set the groups' monthly token budgets (assistant/usage.py)."""

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods

from assistant import access, audit, people, usage
from assistant.access import AuthedRequest
from assistant.audit import trail
from assistant.models import Usage
from ingestion.models import Collection

FILTERS = ("month", "since", "until", "collection", "model")
View = Callable[..., HttpResponseBase]


def viewers_only(view: View) -> View:
    return access.requires(usage.may_view)(require_GET(view))


def active_filters(request: AuthedRequest) -> dict[str, str]:
    return {k: request.GET[k].strip() for k in FILTERS if request.GET.get(k, "").strip()}


def selected(request: AuthedRequest) -> tuple[usage.Period, QuerySet[Collection], QuerySet[Usage]]:
    """The period, the collections shown and the usage rows the filters pick (or BadFilter)."""
    period = usage.period_of(request.GET)
    collections = usage.shown_collections(request.user, request.GET)
    return period, collections, usage.search(request.user, request.GET, period)


@viewers_only
def index(request: AuthedRequest) -> HttpResponse:
    try:
        period, collections, rows = selected(request)
    except trail.BadFilter as exc:
        messages.error(request, str(exc))
        return redirect("usage:index")
    tables = usage.tables(rows, collections)
    context = {
        "period": period,
        "params": request.GET,
        "query": request.GET.urlencode(),
        "totals": usage.totals(rows),
        "tables": tables,
        "chart": usage.chart(tables["day"], period),
        "saved": usage.saved(rows),
        "currency": settings.COST_CURRENCY,
        "collections": usage.shown_collections(request.user, {}),
        "models": Usage.objects.order_by("model").values_list("model", flat=True).distinct(),
        "may_set_budgets": usage.may_set_budgets(request.user),
    }
    return render(request, "usage/index.html", context)


@viewers_only
def export(request: AuthedRequest) -> HttpResponseBase:
    try:
        _period, collections, rows = selected(request)
    except trail.BadFilter as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    audit.record(
        audit.Action.AUDIT_EXPORTED,
        request.user,
        detail={"format": "csv", "export": "usage", "filters": active_filters(request)},
        request=request,
    )
    response = StreamingHttpResponse(usage.csv_lines(rows, collections), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="enclave-usage.csv"'
    return response


@access.requires(usage.may_set_budgets)
@require_http_methods(["GET", "POST"])
def budgets(request: AuthedRequest) -> HttpResponseBase:
    if request.method == "POST":
        plain = Group.objects.filter(pk__in=[g.pk for g in people.plain_groups()])
        group = get_object_or_404(plain, pk=posted_id(request.POST.get("group", "")))
        try:
            tokens = usage.parse_budget(request.POST.get("monthly_tokens", ""))
        except usage.BudgetError as exc:
            messages.error(request, str(exc))
        else:
            usage.set_budget(group, tokens, request.user, request)
            messages.success(request, gettext("Budget of %(group)s saved.") % {"group": group.name})
        return redirect("usage:budgets")
    return render(request, "usage/budgets.html", {"report": usage.budget_report()})


def posted_id(value: str) -> int:
    """A posted id, or 0 (no such row: a 404) when it is not a number."""
    return int(value) if value.strip().isdigit() else 0


urls = (
    [
        path("", index, name="index"),
        path("export.csv", export, name="export"),
        path("budgets/", budgets, name="budgets"),
    ],
    "usage",
)
