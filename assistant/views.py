import json
import logging
from collections.abc import Callable, Generator, Iterator
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from assistant import (
    access,
    audit,
    chat,
    conversations,
    picker,
    ratelimit,
    readiness,
    scope,
    usage,
)
from assistant.access import AuthedRequest
from assistant.models import Conversation, Message, QueryRecord

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
        # The sidebar's groups or search results, and an empty chat's starter questions.
        **conversations.chat_context(request.user, conversation, request.GET.get("q", "")),
        "chat_messages": messages_for_display(request.user, conversation) if conversation else [],
        "collections": access.collections_visible_to(request.user),
        "scope": scope.effective(request.user, conversation),
        "models": picker.offered(request.user, conversation),
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
        return HttpResponseBadRequest(gettext("A title is required."))
    conversation.title = title
    conversation.save(update_fields=["title"])
    return redirect("chat:conversation", conversation_id=conversation.pk)


@login_required
@require_POST
def conversation_delete(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    access.own_conversation(request.user, conversation_id).delete()
    return redirect("chat:index")


ASK_FIELDS = {"question", "csrfmiddlewaretoken", "scope"}  # scope: the picker's collection ids
# A new conversation also takes the empty chat's model picker; a started one keeps its pick
# (changed by conversation_model only).
NEW_ASK_FIELDS = ASK_FIELDS | {"model"}


def too_long(question: str) -> HttpResponseBadRequest | None:
    """Refused, never cut: an answer to part of a question would read as an answer to all of it."""
    if len(question) <= chat.MAX_QUESTION_CHARS:
        return None
    return HttpResponseBadRequest(
        gettext("The question is too long: at most %(limit)s characters.")
        % {"limit": chat.MAX_QUESTION_CHARS}
    )


def within_budget(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Refuse a question before anything is stored when a group of the asker's has spent its
    month's tokens: a 429 whose plain-text body the chat shows as it is (like a rate limit)."""

    @wraps(view)
    def checked(request: AuthedRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        if message := usage.over_budget(request.user):
            audit.record(audit.Action.BUDGET_EXCEEDED, request.user, request=request)
            return HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
        return view(request, *args, **kwargs)

    return checked


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


@login_required
@require_POST
@ratelimit.per_user("RATE_LIMIT_QUESTIONS", "asking")
@within_budget
def ask(request: AuthedRequest, conversation_id: int | None = None) -> HttpResponseBase:
    """Stream the answer as server-sent events over the POST response."""
    question = request.POST.get("question", "").strip()
    if not question:
        return HttpResponseBadRequest(gettext("Ask a question first."))
    if refused := too_long(question):
        return refused
    ignored = sorted(set(request.POST) - (ASK_FIELDS if conversation_id else NEW_ASK_FIELDS))
    if conversation_id is None:
        picked = scope.chosen(request.user, request.POST.getlist("scope"), request)
        conversation = Conversation(user=request.user, title=question[:80], scope=picked)
        model = request.POST.get("model", "")
        if picker.offered(request.user, conversation).allows(model):
            conversation.model = model
        else:
            ignored = sorted([*ignored, "model"])
        conversation.save()
    else:
        conversation = access.own_conversation(request.user, conversation_id)
        # A started conversation keeps its scope (changed by conversation_scope only).
        scope.chosen(request.user, request.POST.getlist("scope"), request)
    if ignored:
        # Scope, model and generation settings come from the server; an attempt to send
        # them is kept as a denied access, with the collections really searched.
        detail = {
            "reason": "client-supplied parameters ignored",
            "parameters": ignored,
            "requested": {name: request.POST.getlist(name) for name in ignored},
            "effective": [c.pk for c in scope.effective(request.user, conversation)],
        }
        audit.record(audit.Action.ACCESS_DENIED, request.user, detail=detail, request=request)
    return answer_stream(request, conversation, chat.answer(request.user, conversation, question))


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


@login_required
@require_POST
def conversation_scope(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    """The collections a conversation searches from its next question on; none ticked: all."""
    conversation = access.own_conversation(request.user, conversation_id)
    picked = scope.chosen(request.user, request.POST.getlist("scope"), request)
    scope.change(request.user, conversation, picked, request)
    return redirect("chat:conversation", conversation_id=conversation.pk)


@login_required
@require_POST
def conversation_model(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    """The model a conversation asks from its next question on, among those its scope allows."""
    conversation = access.own_conversation(request.user, conversation_id)
    name = request.POST.get("model", "")
    if not picker.offered(request.user, conversation).allows(name):
        return HttpResponseBadRequest(
            gettext("That model may not read this conversation's collections.")
        )
    picker.pick(request.user, conversation, name, request)
    if request.headers.get("HX-Request") != "true":
        return redirect("chat:conversation", conversation_id=conversation.pk)
    context = {
        "conversation": conversation,
        "models": picker.offered(request.user, conversation),
        "saved": True,
    }
    return render(request, "assistant/_model.html", context)


# --- the answer's lifecycle: the stream, stop, regenerate, edit and resend, copy ------------


def answer_stream(
    request: AuthedRequest, conversation: Conversation, events: Generator[chat.Event]
) -> StreamingHttpResponse:
    """chat.answer()'s events as server-sent events over the POST response."""
    user = request.user
    # The events are made while the response is sent: keep the request's language for them.
    language = translation.get_language()

    def stream() -> Iterator[bytes]:
        url = reverse("chat:conversation", args=[conversation.pk])
        yield sse("conversation", {"id": conversation.pk, "url": url, "title": conversation.title})
        with translation.override(language):
            try:
                for event in events:
                    if event["type"] == "token":
                        yield sse("token", {"text": event["text"]})
                    elif event["type"] == "status":
                        yield sse("status", {"phase": event["phase"], "text": event["text"]})
                    elif event["type"] == "record":
                        stop_url = reverse("chat:stop", args=[event["id"]])
                        yield sse("record", {"id": event["id"], "stop_url": stop_url})
                    elif event["type"] == "error":
                        yield sse("error", {"message": event["message"]})
                    else:
                        message = event["message"]
                        message.sources = access.visible_sources(user, message.sources)
                        html = render_to_string(
                            "assistant/chat.html#message", {"m": message}, request=request
                        )
                        yield sse("done", {"html": html, "outcome": event["outcome"]})
            except Exception:
                log.exception("answer failed")
                failed = gettext("Something went wrong; the question was not answered.")
                yield sse("error", {"message": failed})
            finally:
                events.close()  # finalises the record now, whoever else still holds the generator

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["X-Accel-Buffering"] = "no"  # nginx and friends must not hold the tokens back
    return response


def own_record(user: access.User, record_id: int) -> QueryRecord:
    """One of the user's own query records; anyone else's is a 404, as if it did not exist."""
    return get_object_or_404(QueryRecord, pk=record_id, user_ref=user.pk)


@login_required
@require_POST
def answer_stop(request: AuthedRequest, record_id: int) -> HttpResponse:
    chat.stop(own_record(request.user, record_id))
    return HttpResponse(status=204)


def latest_question(
    request: AuthedRequest, conversation_id: int
) -> tuple[Conversation, QueryRecord]:
    conversation = access.own_conversation(request.user, conversation_id)
    record = chat.latest_record(conversation)
    if record is None or not record.question:
        raise Http404("This conversation has no question to ask again.")
    return conversation, record


@login_required
@require_POST
@ratelimit.per_user("RATE_LIMIT_QUESTIONS", "asking")
@within_budget
def answer_regenerate(request: AuthedRequest, conversation_id: int) -> HttpResponseBase:
    """Ask the conversation's last question again, in place of its answer."""
    conversation, record = latest_question(request, conversation_id)
    events = chat.answer(request.user, conversation, record.question, regenerates=record)
    return answer_stream(request, conversation, events)


@login_required
@require_POST
@ratelimit.per_user("RATE_LIMIT_QUESTIONS", "asking")
@within_budget
def question_edit(request: AuthedRequest, conversation_id: int) -> HttpResponseBase:
    """Ask the conversation's last question in edited words, in place of the original."""
    question = request.POST.get("question", "").strip()
    if not question:
        return HttpResponseBadRequest(gettext("Ask a question first."))
    if refused := too_long(question):
        return refused
    conversation, record = latest_question(request, conversation_id)
    events = chat.answer(request.user, conversation, question, edits=record)
    return answer_stream(request, conversation, events)


@login_required
@require_POST
def answer_copied(request: AuthedRequest, record_id: int) -> HttpResponse:
    """The browser copied an answer and its sources: the copy left the app, so it is audited."""
    record = own_record(request.user, record_id)
    audit.record(audit.Action.ANSWER_COPIED, request.user, record, request=request)
    return HttpResponse(status=204)
