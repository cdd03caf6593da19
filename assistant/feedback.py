"""Feedback on answers: the conversation's author rates an answer (each change audited), and
collection admins (their collections) and auditors (all) read and export what was said."""

import csv
from collections import Counter
from collections.abc import Callable, Iterator, Mapping

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from assistant import access, audit, grounding
from assistant.access import AuthedRequest
from assistant.audit import trail
from assistant.models import Feedback, Message, QueryRecord
from ingestion.models import Collection, Document

MAX_COMMENT_CHARS = 1000
PAGE_SIZE = 50
TOP_DOCUMENTS = 10
FILTERS = ("collection", "rating", "since", "until")
View = Callable[..., HttpResponseBase]
CSV_COLUMNS = (
    "updated_at", "username", "rating", "reasons", "comment", "collections", "document_ids",
    "question", "record_seq",
)  # fmt: skip


def give(
    record: QueryRecord,
    user: User,
    rating: str,
    reasons: list[str],
    comment: str,
    request: AuthedRequest | None = None,
) -> Feedback:
    """Save the user's feedback on the record and chain an event with it; a repeat of the
    same feedback changes nothing."""
    reasons = [r for r in Feedback.Reason.values if r in reasons] if rating == "down" else []
    comment = comment.strip()[:MAX_COMMENT_CHARS]
    with transaction.atomic():
        feedback = Feedback.objects.select_for_update().filter(record=record, user=user).first()
        action = audit.Action.FEEDBACK_CHANGED if feedback else audit.Action.FEEDBACK_GIVEN
        if feedback is None:
            feedback = Feedback(record=record, user=user)
        elif (feedback.rating, feedback.reasons, feedback.comment) == (rating, reasons, comment):
            return feedback
        feedback.rating, feedback.reasons, feedback.comment = rating, reasons, comment
        feedback.save()
        # The comment is kept (bounded by the trail), as the trail keeps the question itself.
        detail = {"feedback": feedback.pk, "rating": rating, "reasons": reasons, "comment": comment}
        audit.record(action, user, record, detail=detail, request=request)
    return feedback


def may_review(user: access.User) -> bool:
    return access.can_audit(user) or access.collections_managed_by(user).exists()


def reviewable(user: access.User) -> QuerySet[Feedback]:
    """Auditors read all feedback; a collection admin, feedback on answers that searched one
    of their collections."""
    found = Feedback.objects.select_related("record", "user")
    if access.can_audit(user):
        return found
    ids = access.collections_managed_by(user).values_list("pk", flat=True)
    searched = Q()
    for pk in ids:
        searched |= Q(record__collection_keys__contains=f",{pk},")
    return found.filter(searched) if searched else found.none()


def search(user: access.User, params: Mapping[str, str]) -> QuerySet[Feedback]:
    found = reviewable(user)
    if value := params.get("collection", "").strip():
        pk = trail.parse_id(value, "collection")
        found = found.filter(record__collection_keys__contains=f",{pk},")
    if value := params.get("rating", "").strip():
        found = found.filter(rating=value)
    if value := params.get("since", "").strip():
        found = found.filter(updated_at__date__gte=trail.parse_day(value, "since"))
    if value := params.get("until", "").strip():
        found = found.filter(updated_at__date__lte=trail.parse_day(value, "until"))
    return found.order_by("-updated_at", "-id")


def cited_documents(answer: str, retrieved: list[dict], checks: dict) -> set[int]:
    """The documents an answer cites with [n]. A source shown but never cited does not count:
    n is the place of its passage among those shown, whose point ids the record keeps in order
    (chat.py); a purged record cites nothing."""
    shown = checks.get("shown", [])
    document_of = {s.get("point_id"): s.get("document_id") for s in retrieved}
    numbers = {int(n) for n in grounding.CITATION.findall(answer)}
    cited = {document_of.get(shown[n - 1]) for n in numbers if 0 < n <= len(shown)}
    return {pk for pk in cited if pk is not None}


def disliked_documents(user: access.User, found: QuerySet[Feedback]) -> list[dict]:
    """The documents most often cited in disliked answers. An admin sees only those in
    collections they manage."""
    counts: Counter[int] = Counter()
    disliked = found.filter(rating=Feedback.Rating.DOWN).values_list(
        "record__answer", "record__retrieved", "record__grounding"
    )
    for answer, retrieved, checks in disliked.iterator(500):
        counts.update(cited_documents(answer, retrieved or [], checks or {}))
    auditor = access.can_audit(user)
    documents = Document.objects.filter(pk__in=list(counts))
    if not auditor:
        documents = documents.filter(collection__in=access.collections_managed_by(user))
    titles = dict(documents.values_list("pk", "title"))
    if not auditor:
        counts = Counter({pk: n for pk, n in counts.items() if pk in titles})
    return [
        {"id": pk, "title": titles.get(pk), "count": n}
        for pk, n in counts.most_common(TOP_DOCUMENTS)
    ]


def row(feedback: Feedback, auditor: bool) -> dict:
    record = feedback.record
    return {
        "updated_at": feedback.updated_at.isoformat(),
        # Who said it is for auditors; an admin reads what was said about their collections.
        "username": record.username if auditor else "",
        "rating": feedback.rating,
        "reasons": feedback.reasons,
        "comment": feedback.comment,
        "collections": [c["name"] for c in record.scope],
        "document_ids": record.document_ids,
        "question": record.question,
        "record_seq": record.seq,
    }


def csv_lines(found: QuerySet[Feedback], auditor: bool) -> Iterator[bytes]:
    writer = csv.writer(trail.Echo())
    yield writer.writerow(CSV_COLUMNS).encode()
    for feedback in found.iterator(chunk_size=200):
        values = row(feedback, auditor)
        yield writer.writerow([trail.cell(values[c]) for c in CSV_COLUMNS]).encode()


# --- views ----------------------------------------------------------------------------------


@login_required
@require_POST
def answer_feedback(request: AuthedRequest, conversation_id: int, message_id: int) -> HttpResponse:
    """Only the conversation's author may rate its answers: anyone else gets a 404."""
    conversation = access.own_conversation(request.user, conversation_id)
    message = get_object_or_404(
        conversation.messages.select_related("query"),
        pk=message_id,
        role=Message.Role.ASSISTANT,
        query__isnull=False,
    )
    assert message.query is not None
    rating = request.POST.get("rating") or request.POST.get("current", "")
    if rating not in Feedback.Rating.values:
        return HttpResponseBadRequest(gettext("Choose helpful or not helpful."))
    give(
        message.query,
        request.user,
        rating,
        request.POST.getlist("reasons"),
        request.POST.get("comment", ""),
        request,
    )
    if request.headers.get("HX-Request") != "true":
        return redirect(reverse("chat:conversation", args=[conversation.pk]) + f"#msg-{message.pk}")
    return render(request, "assistant/_feedback.html", {"m": message, "saved": True})


def reviewers_only(view: View) -> View:
    return access.requires(may_review)(require_GET(view))


def active_filters(request: AuthedRequest) -> dict[str, str]:
    return {k: request.GET[k].strip() for k in FILTERS if request.GET.get(k, "").strip()}


def filter_query(request: AuthedRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@reviewers_only
def index(request: AuthedRequest) -> HttpResponse:
    try:
        found = search(request.user, request.GET)
    except trail.BadFilter as exc:
        messages.error(request, str(exc))
        return redirect("feedback:index")
    filters = active_filters(request)
    audit.record(
        audit.Action.AUDIT_VIEWED,
        request.user,
        detail={"page": "feedback", "filters": filters},
        request=request,
    )
    auditor = access.can_audit(request.user)
    collections = (
        Collection.objects.all() if auditor else access.collections_managed_by(request.user)
    )
    context = {
        "page": Paginator(found, PAGE_SIZE).get_page(request.GET.get("page")),
        "params": request.GET,
        "query": filter_query(request),
        "auditor": auditor,
        "ratings": Feedback.Rating.choices,
        "collections": collections.order_by("name"),
    }
    if request.headers.get("HX-Request") == "true":
        return render(request, "assistant/feedback.html#rows", context)
    context["documents"] = disliked_documents(request.user, found)
    return render(request, "assistant/feedback.html", context)


@reviewers_only
def export(request: AuthedRequest) -> HttpResponseBase:
    try:
        found = search(request.user, request.GET)
    except trail.BadFilter as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    audit.record(
        audit.Action.AUDIT_EXPORTED,
        request.user,
        detail={"format": "csv", "export": "feedback", "filters": active_filters(request)},
        request=request,
    )
    lines = csv_lines(found, access.can_audit(request.user))
    response = StreamingHttpResponse(lines, content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="enclave-feedback.csv"'
    return response
