"""The compliance auditor's pages. Reading the trail is itself recorded."""

from collections.abc import Callable

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from assistant import access, audit
from assistant.access import AuthedRequest
from assistant.audit import trail
from assistant.audit.models import AuditEvent, QueryRecord
from ingestion.models import Collection, Document

PAGE_SIZE = 50
View = Callable[..., HttpResponseBase]


def auditor_only(view: View) -> View:
    return access.requires(access.can_audit)(require_GET(view))


def viewed(request: AuthedRequest, page: str, **detail: object) -> None:
    audit.record(
        audit.Action.AUDIT_VIEWED, request.user, detail={"page": page, **detail}, request=request
    )


def page_of(request: AuthedRequest, items) -> object:
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


@auditor_only
def records(request: AuthedRequest) -> HttpResponse:
    filters = trail.active_filters(request.GET)
    try:
        found = trail.query_records(request.GET)
    except trail.BadFilter as exc:
        messages.error(request, str(exc))
        return redirect("audit:index")
    viewed(request, "records", filters=filters)
    context = {
        "page": page_of(request, found),
        "filters": filters,
        "query": request.GET.urlencode(),
        "outcomes": QueryRecord.Outcome.choices,
        "collections": Collection.objects.order_by("name"),
    }
    if request.headers.get("HX-Request") == "true":
        return render(request, "assistant/audit_records.html#rows", context)
    return render(request, "assistant/audit_records.html", context)


@auditor_only
def record_detail(request: AuthedRequest, record_id: int) -> HttpResponse:
    record = get_object_or_404(QueryRecord, pk=record_id)
    viewed(request, "record", record=record.pk, seq=record.seq)
    readable = set(
        Document.objects.filter(
            pk__in=record.document_ids, collection__in=access.collections_visible_to(request.user)
        ).values_list("pk", flat=True)
    )
    return render(request, "assistant/audit_record.html", {"record": record, "readable": readable})


@auditor_only
def document_provenance(request: AuthedRequest, document_id: int) -> HttpResponse:
    """Every answer that used a document, also after the document was deleted."""
    found = trail.query_records({"document": str(document_id)})
    viewed(request, "document", document=document_id)
    document = Document.objects.filter(pk=document_id).first()
    title = document.title if document else None
    if title is None:
        for chunk in (found.first() or QueryRecord()).retrieved:
            if chunk.get("document_id") == document_id:
                title = chunk.get("title")
    context = {"page": page_of(request, found), "document": document, "title": title,
               "document_id": document_id, "query": f"document={document_id}"}  # fmt: skip
    if request.headers.get("HX-Request") == "true":
        return render(request, "assistant/audit_records.html#rows", context)
    return render(request, "assistant/audit_document.html", context)


@auditor_only
def events(request: AuthedRequest) -> HttpResponse:
    try:
        found = trail.events(request.GET)
    except trail.BadFilter as exc:
        messages.error(request, str(exc))
        return redirect("audit:events")
    viewed(request, "events", filters={k: v for k, v in request.GET.items() if k != "page"})
    context = {"page": page_of(request, found), "actions": AuditEvent.Action.choices,
               "query": request.GET.urlencode(), "params": request.GET}  # fmt: skip
    return render(request, "assistant/audit_events.html", context)


@auditor_only
def export(request: AuthedRequest, fmt: str) -> HttpResponseBase:
    try:
        found = trail.query_records(request.GET)
    except trail.BadFilter as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    filters = trail.active_filters(request.GET)
    audit.record(
        audit.Action.AUDIT_EXPORTED,
        request.user,
        detail={"format": fmt, "filters": filters},
        request=request,
    )
    if fmt == "csv":
        response = StreamingHttpResponse(trail.csv_lines(found), content_type="text/csv")
    else:
        response = StreamingHttpResponse(trail.jsonl_lines(found), content_type="application/jsonl")
    response["Content-Disposition"] = f'attachment; filename="enclave-audit.{fmt}"'
    return response
