import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, TooManyFilesSent
from django.core.files.uploadedfile import UploadedFile
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext, ngettext
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from assistant import access, audit, params, ratelimit, registry
from assistant.access import AuthedRequest
from ingestion import collections, documents, pages, starters
from ingestion.models import ACTIVE, FINISHED, Collection, Document
from ingestion.uploads import SizeLimit, Truncated

log = logging.getLogger(__name__)

DOCUMENTS_PER_PAGE = 50


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@login_required
@require_GET
def collection_list(request: AuthedRequest) -> HttpResponse:
    context = {
        "collections": access.collections_visible_to(request.user),
        "managed_ids": set(
            access.collections_managed_by(request.user).values_list("pk", flat=True)
        ),
        "can_create": access.can_create_collections(request.user),
        "groups": access.grantable_groups(),
    }
    return render(request, "ingestion/collections.html", context)


@login_required
@require_POST
def collection_create(request: AuthedRequest) -> HttpResponse:
    if not access.can_create_collections(request.user):
        raise PermissionDenied
    try:
        collection = collections.create(
            request.POST.get("name", ""),
            request.POST.get("description", ""),
            Group.objects.filter(pk__in=params.numbers(request.POST.getlist("groups"))),
            request.user,
        )
    except collections.RoleGranted as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    except collections.CollectionError as exc:
        messages.error(request, str(exc))
        return redirect("ingestion:collections")
    return redirect("ingestion:collection", collection_id=collection.pk)


def documents_context(request: AuthedRequest, collection: Collection) -> dict:
    docs = collection.documents.all()
    # The progress bar counts the whole last upload, not the page of the list on screen.
    latest = docs.values_list("batch", flat=True).first()
    shown = docs.filter(batch=latest).exclude(status=Document.Status.DELETING)  # going
    batch = list(shown.values_list("status", flat=True)) if latest else []
    done = sum(1 for s in batch if s in FINISHED)
    return {
        "collection": collection,
        "page": Paginator(docs, DOCUMENTS_PER_PAGE).get_page(request.GET.get("page")),
        "running": docs.filter(status__in=[*ACTIVE, Document.Status.DELETING]).exists(),
        "batch": {
            "total": len(batch),
            "done": done,
            "percent": round(100 * done / len(batch)) if batch else 100,
            "failed": sum(
                1 for s in batch if s in (Document.Status.FAILED, Document.Status.ENCRYPTED)
            ),
            "skipped": sum(1 for s in batch if s == Document.Status.SKIPPED),
        },
        "can_manage": access.collections_managed_by(request.user).filter(pk=collection.pk).exists(),
    }


@login_required
@require_GET
def collection_detail(request: AuthedRequest, collection_id: int) -> HttpResponse:
    collection = access.readable_collection(request.user, collection_id)
    context = documents_context(request, collection)
    if is_htmx(request):
        return render(request, "ingestion/collection.html#documents", context)
    return render(request, "ingestion/collection.html", context)


@csrf_exempt  # the CSRF check runs below, once the size-limiting handler is in place
@login_required
@require_POST
@ratelimit.per_user("RATE_LIMIT_UPLOADS", "uploading")
def upload(request: AuthedRequest, collection_id: int) -> HttpResponse:
    collection = access.managed_collection(request.user, collection_id)
    limit = SizeLimit(request)
    request.upload_handlers = [limit, *request.upload_handlers]
    # The body is read here, before the CSRF check reads it, so that a refused one is explained
    # rather than answered with a bare 400. Nothing is stored on these paths.
    try:
        files = request.FILES.getlist("files")
    except TooManyFilesSent:
        message = gettext("At most %(count)d files per upload.")
        messages.error(request, message % {"count": settings.MAX_FILES_PER_UPLOAD})
        return back_to(request, collection)
    except Truncated as exc:
        log.warning("Upload to collection %s refused: %s", collection.pk, exc)
        message = gettext(
            "The upload was cut off after %(received)s of %(expected)s bytes. "
            "Nothing was uploaded; please upload again."
        )
        received, expected = (number_format(n, force_grouping=True) for n in exc.counts)
        messages.error(request, message % {"received": received, "expected": expected})
        return back_to(request, collection)
    return _upload(request, collection, files, limit)


@csrf_protect
def _upload(
    request: AuthedRequest, collection: Collection, files: list[UploadedFile], limit: SizeLimit
) -> HttpResponse:
    for name in limit.too_large:
        message = gettext("%(name)s is larger than %(size)d MB and was not uploaded.")
        size = settings.MAX_UPLOAD_BYTES // (1024 * 1024)
        messages.error(request, message % {"name": documents.clean_name(name), "size": size})
    if limit.too_large and not files:
        return back_to(request, collection)
    # Each file's path was sent at its position: a dropped file's path goes with it.
    paths = [p for n, p in enumerate(request.POST.getlist("paths")) if n not in limit.dropped]
    try:
        created = documents.upload(collection, files, request.user, paths=paths)
    except documents.UploadRejected as exc:
        messages.error(request, str(exc))
    else:
        # English keeps "file(s)" in both forms; other languages get their plural forms.
        uploaded = ngettext(
            "%(count)d file(s) uploaded; ingestion has started.",
            "%(count)d file(s) uploaded; ingestion has started.",
            len(created),
        )
        messages.success(request, uploaded % {"count": len(created)})
    return back_to(request, collection)


def back_to(request: HttpRequest, collection: Collection) -> HttpResponse:
    """Back to the collection page, which shows the messages. The upload script (an htmx-style
    request) is told where to go: a redirect its request followed would show them to the script."""
    url = reverse("ingestion:collection", args=[collection.pk])
    if is_htmx(request):
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    return redirect(url)


@login_required
@require_POST
def collection_reingest(request: AuthedRequest, collection_id: int) -> HttpResponse:
    collection = access.managed_collection(request.user, collection_id)
    documents.reingest_collection(collection, request.user)
    messages.success(request, gettext("Every document is queued again."))
    return redirect("ingestion:collection", collection_id=collection.pk)


@login_required
@require_POST
def collection_clear(request: AuthedRequest, collection_id: int) -> HttpResponse:
    collection = access.managed_collection(request.user, collection_id)
    count = documents.delete_collection_documents(collection, request.user)
    deleted = ngettext(
        "Deleted %(count)d document(s) and all their passages.",
        "Deleted %(count)d document(s) and all their passages.",
        count,
    )
    messages.success(request, deleted % {"count": count})
    return redirect("ingestion:collection", collection_id=collection.pk)


@login_required
@require_POST
def document_reingest(request: AuthedRequest, document_id: int) -> HttpResponse:
    document = access.managed_document(request.user, document_id)
    documents.reingest(document, request.user)
    return redirect("ingestion:collection", collection_id=document.collection_id)


@login_required
@require_POST
def document_delete(request: AuthedRequest, document_id: int) -> HttpResponse:
    document = access.managed_document(request.user, document_id)
    collection_id = document.collection_id
    documents.delete(document, request.user)
    messages.success(request, gettext("Deleted %(title)s.") % {"title": document.title})
    return redirect("ingestion:collection", collection_id=collection_id)


@login_required
@require_GET
def document_file(request: AuthedRequest, document_id: int) -> FileResponse:
    document = access.readable_document(request.user, document_id)
    if not document.file:
        raise Http404("This document has no stored file.")
    audit.record(audit.Action.DOCUMENT_OPENED, request.user, document, request=request)
    # Only PDFs open in the browser (citations jump to #page=N); everything else downloads,
    # so an uploaded HTML file can never run as a page of this site. The bytes decide, not the
    # name: an HTML file named .pdf downloads too.
    stored = document.file.open("rb")
    inline = document.extension == ".pdf" and stored.read(5) == b"%PDF-"
    stored.seek(0)
    response = FileResponse(
        stored,
        as_attachment=not inline,
        filename=document.original_name,
        content_type="application/pdf" if inline else "application/octet-stream",
    )
    if not inline:
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


@login_required
@require_GET
def document_page(request: AuthedRequest, document_id: int, page: int) -> HttpResponse:
    """A page's extracted text with the cited passage (?chunk=N) marked."""
    document = access.readable_document(request.user, document_id)
    chunk = request.GET.get("chunk", "")
    try:
        text = pages.page_text(document, page, params.number(chunk) if chunk else None)
    except pages.NotStored:
        context = {"document": document}
        return render(request, "ingestion/pages_not_stored.html", context, status=404)
    # The page shows the document's full text: as much an opening as the file download.
    audit.record(
        audit.Action.DOCUMENT_OPENED, request.user, document, detail={"page": page}, request=request
    )
    return render(request, "ingestion/document_page.html", {"document": document, "page": text})


@login_required
def collection_access(request: AuthedRequest, collection_id: int) -> HttpResponse:
    """Managers choose which groups read the collection and who else manages it; superusers
    also which models may read it (its sensitivity)."""
    collection = access.managed_collection(request.user, collection_id)
    may_set_sensitivity = registry.may_manage_models(request.user)
    if request.method == "POST":
        days = request.POST.get("retention_days", "").strip()
        sensitivity = request.POST.get("sensitivity")
        if sensitivity is not None and not may_set_sensitivity:
            raise PermissionDenied  # the form offers it to superusers only
        try:
            if sensitivity is not None:  # first: a bad value is refused before anything changes
                collections.set_sensitivity(collection, sensitivity, request.user)
            if days and not params.is_number(days, collections.MAX_RETENTION_DAYS):
                raise collections.CollectionError(
                    gettext("Retention must be a number of days up to %(days)d, or empty.")
                    % {"days": collections.MAX_RETENTION_DAYS}
                )
            collections.set_grants(
                collection,
                Group.objects.filter(pk__in=params.numbers(request.POST.getlist("groups"))),
                User.objects.filter(
                    pk__in=params.numbers(request.POST.getlist("managers")), is_active=True
                ),
                request.user,
            )
            collections.set_retention(
                collection, int(days) if days else None, "legal_hold" in request.POST, request.user
            )
        except collections.RoleGranted as exc:
            return HttpResponseBadRequest(str(exc), content_type="text/plain")
        except collections.CollectionError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, gettext("Access updated."))
        return redirect("ingestion:collection_access", collection_id=collection.pk)
    context = {
        "collection": collection,
        "groups": access.grantable_groups(),
        "granted": set(collection.groups.values_list("pk", flat=True)),
        "users": User.objects.filter(is_active=True).order_by("username"),
        "managers": set(collection.managers.values_list("pk", flat=True)),
        "may_set_sensitivity": may_set_sensitivity,
        "sensitivities": Collection.Sensitivity.choices,
    }
    return render(request, "ingestion/collection_access.html", context)


@login_required
@require_POST
def collection_starters(request: AuthedRequest, collection_id: int) -> HttpResponse:
    """Managers set the questions an empty chat suggests to the collection's readers."""
    collection = access.managed_collection(request.user, collection_id)
    try:
        starters.set_starters(collection, request.POST.get("starters", ""), request.user)
    except starters.StartersError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, gettext("Starter questions saved."))
    return redirect("ingestion:collection", collection_id=collection.pk)
