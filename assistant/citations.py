"""One source of one answer, as the chat's citation panel shows it: the passage marked in the
text around it on its stored page."""

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from assistant import access, audit
from assistant.access import AuthedRequest
from assistant.models import Message
from ingestion import pages

CONTEXT_CHARS = 600  # of the page on each side of the passage


@dataclass(frozen=True)
class Excerpt:
    before: str  # empty, or the page's text before the passage, "…" where it was cut
    passage: str
    after: str


def excerpt(page_text: str | None, passage: str) -> Excerpt:
    """The passage with up to CONTEXT_CHARS of its page on each side, cut at a word; the stored
    passage alone when the page is not stored or no longer holds it (re-ingested)."""
    span = pages.locate(page_text, passage) if page_text else None
    if page_text is None or span is None:
        return Excerpt("", passage, "")
    start, end = span
    before = page_text[max(0, start - CONTEXT_CHARS) : start]
    after = page_text[end : end + CONTEXT_CHARS]
    if start > CONTEXT_CHARS and " " in before:
        before = "…" + before[before.index(" ") :]
    if end + CONTEXT_CHARS < len(page_text) and " " in after:
        after = after[: after.rindex(" ")] + " …"
    return Excerpt(before, page_text[start:end], after)


def answer_source(user: access.User, message_id: int, n: int) -> dict:
    """Source n of an answer in one of the user's conversations, re-authorised like the
    sources list: {"n", "withheld": True} when its document is no longer readable."""
    message = Message.objects.filter(pk=message_id, role=Message.Role.ASSISTANT).first()
    if message is None:
        raise Http404
    access.own_conversation(user, message.conversation_id)  # 404 (and recorded) for others
    for source in access.visible_sources(user, message.sources):
        if source["n"] == n:
            return source
    raise Http404


@login_required
@require_GET
def source_panel(request: AuthedRequest, message_id: int, n: int) -> HttpResponse:
    source = answer_source(request.user, message_id, n)
    context: dict = {"source": source}
    if not source.get("withheld"):
        document = access.readable_document(request.user, source["document_id"])
        page = document.page_texts.filter(number=source["page"]).first()
        context["document"] = document
        context["excerpt"] = excerpt(page.text if page else None, source["text"])
        # Text around the passage is more than the answer showed: an opening, like the page view.
        audit.record(
            audit.Action.DOCUMENT_OPENED,
            request.user,
            document,
            detail={"page": source["page"], "message": message_id, "citation": n},
            request=request,
        )
    return render(request, "assistant/_citation_panel.html", context)
