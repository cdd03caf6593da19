"""Finding and organising one's own conversations: search, pins, the sidebar's date groups, and
the starter questions an empty chat offers."""

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from assistant import access, params
from assistant.access import AuthedRequest
from assistant.models import Conversation, Message
from ingestion import starters

SIDEBAR_SIZE = 50  # unpinned conversations listed; older ones are found by search
MAX_PINNED = 50
MAX_RESULTS = 20
MAX_QUERY = 200
SNIPPET = 90  # characters of a matching message shown around the match


# The sidebar's groups: a fixed key (the page and scripts find a group by it) and its label.
GROUPS = {
    "Pinned": gettext_lazy("Pinned"),
    "Today": gettext_lazy("Today"),
    "Yesterday": gettext_lazy("Yesterday"),
    "Previous 7 days": gettext_lazy("Previous 7 days"),
    "Older": gettext_lazy("Older"),
}


def grouped(user: User) -> list[tuple[str, str, list[Conversation]]]:
    """The sidebar: pinned first, then the recent ones by the day they were last used, each as
    (key, label, conversations)."""
    today = timezone.localdate()
    pinned = list(user.conversations.filter(pinned=True)[:MAX_PINNED])
    groups: dict[str, list[Conversation]] = {
        "Today": [],
        "Yesterday": [],
        "Previous 7 days": [],
        "Older": [],
    }
    for c in user.conversations.filter(pinned=False)[:SIDEBAR_SIZE]:
        days = (today - timezone.localdate(c.updated_at)).days
        group = "Today" if days <= 0 else "Yesterday" if days == 1 else "Older"
        groups["Previous 7 days" if 1 < days <= 7 else group].append(c)
    return [(key, str(GROUPS[key]), items) for key, items in [("Pinned", pinned), *groups.items()]]


def snippet(text: str, query: str) -> str:
    at = text.lower().find(query.lower())
    start = max(0, at - SNIPPET // 3)
    cut = text[start : start + SNIPPET]
    return ("…" if start else "") + cut + ("…" if start + SNIPPET < len(text) else "")


def search(user: User, query: str) -> list[tuple[Conversation, str]]:
    """The user's own conversations whose title or messages contain the query (any case), most
    recent first; a matching message's words come with each. icontains runs on both databases."""
    query = query.strip()[:MAX_QUERY]
    if not query:
        return []
    mine = Conversation.objects.filter(user=user)
    ids = set(mine.filter(title__icontains=query).values_list("pk", flat=True)[:MAX_RESULTS])
    ids |= set(
        Message.objects.filter(conversation__in=mine, content__icontains=query)
        .order_by("-created_at")
        .values_list("conversation_id", flat=True)[: MAX_RESULTS * 5]
    )
    results = list(mine.filter(pk__in=ids)[:MAX_RESULTS])
    found = Message.objects.filter(conversation__in=results, content__icontains=query)
    matches: dict[int, str] = {}
    for conversation_id, content in found.values_list("conversation_id", "content")[:200]:
        matches.setdefault(conversation_id, snippet(content, query))
    return [(c, matches.get(c.pk, "")) for c in results]


def sidebar(user: User, query: str = "", current: Conversation | None = None) -> dict:
    query = query.strip()[:MAX_QUERY]
    groups = [] if query else grouped(user)
    return {
        "q": query,
        "results": search(user, query) if query else None,
        "conversation_groups": groups,
        "has_conversations": any(items for _key, _label, items in groups),
        "current_id": current.pk if current else None,
    }


def chat_context(user: User, conversation: Conversation | None, query: str = "") -> dict:
    """What the chat page adds for the sidebar and, on an empty chat, the starter questions."""
    return {
        **sidebar(user, query, conversation),
        "starters": [] if conversation else starters.offered_to(user),
    }


def current_from(request: HttpRequest, user: User) -> Conversation | None:
    value = request.POST.get("current") or request.GET.get("current") or ""
    if not params.is_number(value):
        return None
    return user.conversations.filter(pk=int(value)).first()


def list_partial(request: AuthedRequest, query: str) -> HttpResponse:
    context = sidebar(request.user, query, current_from(request, request.user))
    return render(request, "assistant/_conversations.html#list", context)


@login_required
@require_GET
def conversation_search(request: AuthedRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    if request.headers.get("HX-Request") == "true":
        return list_partial(request, query)
    return redirect(f"{reverse('chat:index')}?{urlencode({'q': query[:MAX_QUERY]})}")


@login_required
@require_POST
def conversation_pin(request: AuthedRequest, conversation_id: int) -> HttpResponse:
    conversation = access.own_conversation(request.user, conversation_id)
    # Saved without updated_at: pinning is not using it, so its day group stays.
    Conversation.objects.filter(pk=conversation.pk).update(pinned=not conversation.pinned)
    if request.headers.get("HX-Request") == "true":
        return list_partial(request, request.POST.get("q", ""))
    return redirect("chat:conversation", conversation_id=conversation.pk)
