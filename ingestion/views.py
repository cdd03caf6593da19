from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from assistant import access, audit, ratelimit
from assistant.access import AuthedRequest
from ingestion import collections, documents, pages
from ingestion.models import Collection


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
            Group.objects.filter(pk__in=request.POST.getlist("groups")),
            request.user,
        )
    except collections.CollectionError as exc:
        messages.error(request, str(exc))
        return redirect("ingestion:collections")
    return redirect("ingestion:collection", collection_id=collection.pk)


def documents_context(request: AuthedRequest, collection: Collection) -> dict:
    docs = list(collection.documents.all())
    return {
        "collection": collection,
        "documents": docs,
        "running": any(not d.is_finished for d in docs),
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


@login_required
@require_POST
@ratelimit.per_user("RATE_LIMIT_UPLOADS", "uploading", "uploads")
def upload(request: AuthedRequest, collection_id: int) -> HttpResponse:
    collection = access.managed_collection(request.user, collection_id)
    try:
        created = documents.upload(collection, request.FILES.getlist("files"), request.user)
    except documents.UploadRejected as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{len(created)} file(s) uploaded; ingestion has started.")
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
    messages.success(request, f"Deleted {document.title}.")
    return redirect("ingestion:collection", collection_id=collection_id)


@login_required
@require_GET
def document_file(request: AuthedRequest, document_id: int) -> FileResponse:
    document = access.readable_document(request.user, document_id)
    audit.record(audit.Action.DOCUMENT_OPENED, request.user, document, request=request)
    # Only PDFs open in the browser (citations jump to #page=N); everything else downloads,
    # so an uploaded HTML file can never run as a page of this site.
    inline = document.extension == ".pdf"
    response = FileResponse(
        document.file.open("rb"),
        as_attachment=not inline,
        filename=document.original_name,
        content_type="application/pdf" if inline else "application/octet-stream",
    )
    if not inline:
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def document_page(request: AuthedRequest, document_id: int, page: int) -> HttpResponse:
    """A page's extracted text with the cited passage (?chunk=N) marked."""
    document = access.readable_document(request.user, document_id)
    chunk = request.GET.get("chunk", "")
    text = pages.page_text(document, page, int(chunk) if chunk.isdigit() else None)
    response = render(request, "ingestion/document_page.html", {"document": document, "page": text})
    response["Cache-Control"] = "no-store"
    return response


@login_required
def collection_access(request: AuthedRequest, collection_id: int) -> HttpResponse:
    """Managers choose which groups read the collection and who else manages it."""
    collection = access.managed_collection(request.user, collection_id)
    if request.method == "POST":
        days = request.POST.get("retention_days", "").strip()
        try:
            if days and not days.isdigit():
                raise collections.CollectionError("Retention must be a number of days, or empty.")
            collections.set_grants(
                collection,
                Group.objects.filter(pk__in=request.POST.getlist("groups")),
                User.objects.filter(pk__in=request.POST.getlist("managers"), is_active=True),
                request.user,
            )
            collections.set_retention(
                collection, int(days) if days else None, "legal_hold" in request.POST, request.user
            )
        except collections.CollectionError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Access updated.")
        return redirect("ingestion:collection_access", collection_id=collection.pk)
    context = {
        "collection": collection,
        "groups": access.grantable_groups(),
        "granted": set(collection.groups.values_list("pk", flat=True)),
        "users": User.objects.filter(is_active=True).order_by("username"),
        "managers": set(collection.managers.values_list("pk", flat=True)),
    }
    return render(request, "ingestion/collection_access.html", context)
