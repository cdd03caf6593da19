import json
import logging
from collections.abc import Iterator

from django.contrib.auth.decorators import login_required
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from assistant import access, audit, chat, ratelimit, readiness
from assistant.access import AuthedRequest
from assistant.models import Conversation, Message

log = logging.getLogger(__name__)


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    if access.collections_visible_to(request.user).exists() or not access.can_audit(request.user):
        return redirect("chat:index")
    return redirect("ingestion:collections")


def messages_for_display(user: access.User, conversation: Conversation) -> list[Message]:
    # Stored citations are re-authorised every time they are shown.
    messages = list(conversation.messages.select_related("query"))
    for m in messages:
        m.sources = access.visible_sources(user, m.sources)
    return messages


def chat_page(request: AuthedRequest, conversation: Conversation | None) -> HttpResponse:
    context = {
        "conversation": conversation,
        "conversations": request.user.conversations.all()[:50],
        "chat_messages": messages_for_display(request.user, conversation) if conversation else [],
        "collections": access.collections_visible_to(request.user),
    }
    return render(request, "assistant/chat.html", context)


@login_required
@require_GET
def chat_index(request: AuthedRequest) -> HttpResponse:
    return chat_page(request, None)


@login_required
@require_GET
def conversation_detail(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    return chat_page(request, access.own_conversation(request.user, conversation_id))


@login_required
@require_POST
def conversation_rename(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    conversation = access.own_conversation(request.user, conversation_id)
    title = request.POST.get("title", "").strip()[:200]
    if not title:
        return HttpResponseBadRequest("A title is required.")
    conversation.title = title
    conversation.save(update_fields=["title"])
    return redirect("chat:conversation", conversation_id=conversation.pk)


@login_required
@require_POST
def conversation_delete(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    access.own_conversation(request.user, conversation_id).delete()
    return redirect("chat:index")


ASK_FIELDS = {"question", "csrfmiddlewaretoken"}


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


@login_required
@require_POST
@ratelimit.per_user("RATE_LIMIT_QUESTIONS", "asking", "questions")
def ask(request: AuthedRequest, conversation_id: int | None = None) -> HttpResponseBase:
    """Stream the answer as server-sent events over the POST response."""
    question = request.POST.get("question", "").strip()
    if not question:
        return HttpResponseBadRequest("Ask a question first.")
    ignored = sorted(set(request.POST) - ASK_FIELDS)
    if ignored:
        # Scope, model and generation settings come from the server; an attempt to send
        # them is narrowed to nothing and kept as a denied access.
        audit.record(
            audit.Action.ACCESS_DENIED,
            request.user,
            detail={"reason": "client-supplied parameters ignored", "parameters": ignored},
            request=request,
        )
    if conversation_id is None:
        conversation = Conversation.objects.create(user=request.user, title=question[:80])
    else:
        conversation = access.own_conversation(request.user, conversation_id)
    user = request.user
    events = chat.answer(user, conversation, question)

    def stream() -> Iterator[bytes]:
        url = reverse("chat:conversation", args=[conversation.pk])
        yield sse("conversation", {"id": conversation.pk, "url": url, "title": conversation.title})
        try:
            for event in events:
                if event["type"] == "token":
                    yield sse("token", {"text": event["text"]})
                elif event["type"] == "error":
                    yield sse("error", {"message": event["message"]})
                else:
                    message = event["message"]
                    message.sources = access.visible_sources(user, message.sources)
                    html = render_to_string(
                        "assistant/chat.html#message", {"m": message}, request=request
                    )
                    yield sse("done", {"html": html})
        except Exception:
            log.exception("answer failed")
            yield sse("error", {"message": "Something went wrong; the question was not answered."})
        finally:
            events.close()  # finalises the record now, whoever else still holds the generator

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["X-Accel-Buffering"] = "no"  # nginx and friends must not hold the tokens back
    return response


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    ready, checks = readiness.report()
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )
