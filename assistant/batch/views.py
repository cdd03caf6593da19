"""The browser side of batch jobs: define a job, preview it, run it, watch it, read, sort, filter
and export its results, compare two runs. Access and every change go through jobs.py."""

import csv
import io
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, QueryDict, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assistant import access, audit, params
from assistant.access import AuthedRequest
from assistant.audit import trail
from assistant.batch import jobs, schema, table
from assistant.batch.models import BatchJob, BatchResult, BatchRun
from assistant.models import ModelEndpoint

RESULTS_PER_PAGE = 100
MIN_ROWS = 3  # label and field rows the form offers, filled or blank
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
may_run = access.requires(jobs.can_run_batch_jobs)


def is_htmx(request: AuthedRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


# --- the job form -----------------------------------------------------------------------------


def draft_from_post(post: QueryDict) -> dict:
    """What the form sent, every job type's fields kept so that a refused form comes back whole.
    Rows left blank are dropped."""
    labels = [
        {"name": name.strip(), "description": description.strip()}
        for name, description in zip(
            post.getlist("label_name"), post.getlist("label_description"), strict=False
        )
        if name.strip() or description.strip()
    ]
    fields = [
        {
            "name": name.strip(),
            "type": kind,
            "description": description.strip(),
            "choices": [c.strip() for c in choices.split(",") if c.strip()],
        }
        for name, kind, description, choices in zip(
            post.getlist("field_name"),
            post.getlist("field_type"),
            post.getlist("field_description"),
            post.getlist("field_choices"),
            strict=False,
        )
        if name.strip() or description.strip() or choices.strip()
    ]
    return {
        "name": post.get("name", "").strip(),
        "kind": post.get("kind", ""),
        "collection_ids": params.numbers(post.getlist("collections")),
        "instruction": post.get("instruction", "").strip(),
        "model": post.get("model", "").strip(),
        "labels": labels,
        "multi": post.get("multi") == "multi",
        "fields": fields,
        "length": post.get("length", "short"),
        "audience": post.get("audience", "").strip(),
    }


def draft_from_job(job: BatchJob) -> dict:
    spec = job.spec
    return {
        "name": job.name,
        "kind": job.kind,
        "collection_ids": list(job.collections.values_list("pk", flat=True)),
        "instruction": job.instruction,
        "model": job.model,
        "labels": spec.get("labels", []),
        "multi": spec.get("multi", False),
        "fields": spec.get("fields", []),
        "length": spec.get("length", "short"),
        "audience": spec.get("audience", ""),
    }


def new_draft() -> dict:
    return draft_from_post(QueryDict()) | {"kind": BatchJob.Kind.CLASSIFY}


def spec_of(draft: dict) -> dict:
    if draft["kind"] == BatchJob.Kind.CLASSIFY:
        return {"labels": draft["labels"], "multi": draft["multi"]}
    if draft["kind"] == BatchJob.Kind.EXTRACT:
        return {"fields": draft["fields"]}
    return {"length": draft["length"], "audience": draft["audience"]}


def save(request: AuthedRequest, draft: dict, job: BatchJob | None) -> BatchJob:
    fields = {
        "name": draft["name"],
        "collection_ids": draft["collection_ids"],
        "spec": spec_of(draft),
        "instruction": draft["instruction"],
        "model": draft["model"],
    }
    if not draft["name"]:
        raise schema.BadSpec(gettext("Give the job a name."))
    if not draft["collection_ids"]:
        raise schema.BadSpec(gettext("Choose at least one collection."))
    if job is None:
        return jobs.create_job(request.user, kind=draft["kind"], **fields)
    return jobs.update_job(job, request.user, **fields)


def form_page(
    request: AuthedRequest, draft: dict, job: BatchJob | None, error: str = ""
) -> HttpResponse:
    blank_label = {"name": "", "description": ""}
    blank_field = {"name": "", "type": "text", "description": "", "choices": []}
    labels = draft["labels"] + [blank_label] * max(1, MIN_ROWS - len(draft["labels"]))
    fields = draft["fields"] + [blank_field] * max(1, MIN_ROWS - len(draft["fields"]))
    context = {
        "job": job,
        "draft": draft,
        "labels": labels,
        "fields": [f | {"choices_text": ", ".join(f["choices"])} for f in fields],
        "collections": jobs.batch_collections(request.user).order_by("name"),
        "kinds": BatchJob.Kind.choices,
        "field_types": field_type_choices(),
        "lengths": [
            ("short", gettext("Short")),
            ("medium", gettext("Medium")),
            ("long", gettext("Long")),
        ],
        "preview_documents": settings.BATCH_PREVIEW_DOCUMENTS,
        "models": [(e.name, location_label(e.location)) for e in jobs.models()],
        "error": error,
    }
    return render(request, "batch/form.html", context, status=400 if error else 200)


def location_label(location: str) -> str:
    return str(ModelEndpoint.Location(location).label)


def field_type_choices() -> list[tuple[str, str]]:
    names = {
        "text": gettext("Text"),
        "number": gettext("Number"),
        "date": gettext("Date"),
        "yes_no": gettext("Yes/no"),
        "choice": gettext("One of a list"),
    }
    return [(t, names.get(t, t)) for t in schema.FIELD_TYPES]


def start_preview(request: AuthedRequest, job: BatchJob) -> HttpResponse:
    try:
        run = jobs.preview(job, request.user)
    except schema.BadSpec as exc:
        messages.error(request, str(exc))
        return redirect("batch:job", job_id=job.pk)
    return redirect("batch:run_detail", run_id=run.pk)


@may_run
@require_GET
def index(request: AuthedRequest) -> HttpResponse:
    found = jobs.jobs_of(request.user).prefetch_related("runs", "collections")
    return render(request, "batch/index.html", {"jobs": found})


@may_run
@require_http_methods(["GET", "POST"])
def job_create(request: AuthedRequest) -> HttpResponse:
    if request.method != "POST":
        return form_page(request, new_draft(), None)
    draft = draft_from_post(request.POST)
    try:
        job = save(request, draft, None)
    except schema.BadSpec as exc:
        return form_page(request, draft, None, str(exc))
    # A new job shows its preview first: the whole run is one click further.
    return start_preview(request, job)


@may_run
@require_http_methods(["GET", "POST"])
def job_edit(request: AuthedRequest, job_id: int) -> HttpResponse:
    job = jobs.own_job(request.user, job_id)
    if request.method != "POST":
        return form_page(request, draft_from_job(job), job)
    draft = draft_from_post(request.POST) | {"kind": job.kind}  # a job keeps its type
    try:
        save(request, draft, job)
    except schema.BadSpec as exc:
        return form_page(request, draft, job, str(exc))
    return start_preview(request, job)


@may_run
@require_GET
def job_detail(request: AuthedRequest, job_id: int) -> HttpResponse:
    job = jobs.own_job(request.user, job_id)
    runs = list(job.runs.all())  # newest first
    rows = [
        {
            "run": run,
            "progress": jobs.progress(run),
            "comparable": not run.preview and any(not r.preview for r in runs[n + 1 :]),
        }
        for n, run in enumerate(runs)
    ]
    context = {
        "job": job,
        "runs": rows,
        "field_types": dict(field_type_choices()),
        "collections": job.collections.order_by("name"),
    }
    return render(request, "batch/job.html", context)


def start(request: AuthedRequest, job_id: int, preview: bool) -> HttpResponse:
    job = jobs.own_job(request.user, job_id)
    try:
        run = jobs.start(job, request.user, preview=preview)
    except schema.BadSpec as exc:
        messages.error(request, str(exc))
        return redirect("batch:job", job_id=job.pk)
    return redirect("batch:run_detail", run_id=run.pk)


@may_run
@require_POST
def job_preview(request: AuthedRequest, job_id: int) -> HttpResponse:
    return start(request, job_id, preview=True)


@may_run
@require_POST
def job_run(request: AuthedRequest, job_id: int) -> HttpResponse:
    return start(request, job_id, preview=False)


# --- a run: progress, controls, results -------------------------------------------------------


def eta_text(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds < 90:
        return ngettext("about %(count)d second left", "about %(count)d seconds left", seconds) % {
            "count": seconds
        }
    minutes = round(seconds / 60)
    return ngettext("about %(count)d minute left", "about %(count)d minutes left", minutes) % {
        "count": minutes
    }


def progress_context(request: AuthedRequest, run: BatchRun) -> dict:
    """What the progress block polls every two seconds: counts, never the results table."""
    progress = jobs.progress(run)
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "run": run,
        "progress": progress,
        "eta": eta_text(progress.eta_seconds),
        "polling": run.status in (BatchRun.Status.QUEUED, BatchRun.Status.RUNNING),
        "query": query.urlencode(),
    }


def run_context(request: AuthedRequest, run: BatchRun) -> dict:
    headers = table.column_headers(run)
    columns = [key for key, _ in headers]
    found = table.filtered(request.user, run, request.GET, columns)
    page = Paginator(found, RESULTS_PER_PAGE).get_page(request.GET.get("page"))
    return {
        **progress_context(request, run),
        "job": run.job,
        "headers": table.sort_links(request.GET, headers),
        "rows": [table.table_row(r, columns) for r in page],
        "page": page,
        "params": request.GET,
        "statuses": BatchResult.Status.choices,
        "previous": jobs.previous_run(run),
        "model": model_used(run),
        "can_audit": access.can_audit(request.user),
    }


def model_used(run: BatchRun) -> dict:
    """What the run page says of the model: the one reading the documents, where it runs, and
    the one the job picked when the policy did not allow it."""
    policy = run.params.get("policy", {})
    return {
        "name": run.model,
        "location": location_label(run.params.get("endpoint", ModelEndpoint.Location.ON_PREMISES)),
        "refused": run.params.get("picked", "") if policy.get("refused") else "",
    }


@may_run
@require_GET
def run_detail(request: AuthedRequest, run_id: int) -> HttpResponse:
    run = jobs.own_run(request.user, run_id)
    if not is_htmx(request):
        return render(request, "batch/run.html", run_context(request, run))
    context = progress_context(request, run)
    response = render(request, "batch/run.html#progress", context)
    if not context["polling"]:
        # It finished or was paused: the whole page (buttons, results) is out of date.
        response["HX-Refresh"] = "true"
    return response


def control(
    request: AuthedRequest,
    run_id: int,
    change: Callable[[BatchRun, Any], bool],
    done: str,
    refused: str,
) -> HttpResponse:
    run = jobs.own_run(request.user, run_id)
    if change(run, request.user):
        messages.success(request, done)
    else:
        messages.error(request, refused)
    return redirect("batch:run_detail", run_id=run.pk)


@may_run
@require_POST
def run_pause(request: AuthedRequest, run_id: int) -> HttpResponse:
    return control(
        request,
        run_id,
        jobs.pause,
        gettext("Paused: documents already started still finish."),
        gettext("This run cannot be paused now."),
    )


@may_run
@require_POST
def run_resume(request: AuthedRequest, run_id: int) -> HttpResponse:
    return control(
        request,
        run_id,
        jobs.resume,
        gettext("Resumed: finished documents are kept."),
        gettext("This run cannot be resumed now."),
    )


@may_run
@require_POST
def run_cancel(request: AuthedRequest, run_id: int) -> HttpResponse:
    return control(
        request,
        run_id,
        jobs.cancel,
        gettext("Cancelled: documents not yet started will not be read."),
        gettext("This run cannot be cancelled now."),
    )


@may_run
@require_GET
def run_compare(request: AuthedRequest, run_id: int) -> HttpResponse:
    """What changed since an earlier run of the same job (the one before, or ?with=<run id>)."""
    run = jobs.own_run(request.user, run_id)
    other = request.GET.get("with", "")
    earlier = jobs.own_run(request.user, params.number(other)) if other else jobs.previous_run(run)
    if earlier is not None and earlier.job_id != run.job_id:
        earlier = None
    changes = []
    if earlier is not None:
        # Values of documents the viewer can no longer read stay withheld here too.
        readable = set(access.collections_visible_to(request.user).values_list("pk", flat=True))
        changes = [c for c in jobs.compare(earlier, run) if c.collection_id in readable]
    reasons = {
        "changed": gettext("value changed"),
        "document_changed": gettext("document changed"),
        "added": gettext("new document"),
        "removed": gettext("document gone"),
    }
    headings = dict(table.column_headers(run))
    context = {
        "run": run,
        "job": run.job,
        "earlier": earlier,
        "changes": [
            {
                "change": c,
                "column": headings.get(c.column, c.column or ""),
                "before": table.shown(c.before),
                "after": table.shown(c.after),
                "reason": reasons.get(c.reason, c.reason),
            }
            for c in changes
        ],
        "runs": [r for r in run.job.runs.all() if r.pk != run.pk],
    }
    return render(request, "batch/compare.html", context)


# --- exports ----------------------------------------------------------------------------------


@may_run
@require_GET
def export(request: AuthedRequest, run_id: int, fmt: str) -> HttpResponseBase:
    if fmt not in ("csv", "xlsx"):
        raise Http404
    run = jobs.own_run(request.user, run_id)
    audit.record(
        audit.Action.AUDIT_EXPORTED,
        request.user,
        run,
        detail={"export": "batch", "format": fmt, "filters": dict(request.GET.items())},
        request=request,
    )
    filename = f"enclave-batch-{run.job_id}-run-{run.pk}.{fmt}"
    if fmt == "csv":
        writer = csv.writer(trail.Echo())
        lines = (
            writer.writerow(row).encode()
            for row in table.export_rows(request.user, run, request.GET)
        )
        response: HttpResponseBase = StreamingHttpResponse(lines, content_type="text/csv")
    else:
        from openpyxl import Workbook  # only exports need it

        book = Workbook(write_only=True)
        sheet = book.create_sheet(gettext("Results"))
        for row in table.export_rows(request.user, run, request.GET):
            sheet.append(row)
        buffer = io.BytesIO()
        book.save(buffer)
        response = HttpResponse(buffer.getvalue(), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
