"""answer(): scope → retrieve → prompt → record → stream → record the answer."""

import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from assistant import access, audit, llm, prompts
from assistant.models import Conversation, Message, QueryRecord
from ingestion import index

MAX_QUESTION_CHARS = 4000
NOTHING_FOUND = (
    "I found nothing about this in the documents you have access to, so I cannot answer it."
)

Event = dict[str, Any]


def retrieve(user: User, question: str) -> tuple[list[dict], list[dict]]:
    """The user's scope, read from the database now, and the numbered sources found in it."""
    collections = list(access.collections_visible_to(user).order_by("id"))
    scope = [{"id": c.pk, "name": c.name} for c in collections]
    if not collections:
        return scope, []  # an empty scope never reaches Qdrant
    hits = index.search(question, [c.pk for c in collections], settings.RETRIEVAL_TOP_K)
    sources = [{"n": n, **asdict(hit)} for n, hit in enumerate(hits, start=1)]
    return scope, sources


def history(conversation: Conversation) -> list[tuple[str, str]]:
    recent = list(
        conversation.messages.order_by("-created_at", "-id")[: settings.HISTORY_TURNS * 2]
    )
    return [(m.role, m.content) for m in reversed(recent)]


def answer(user: User, conversation: Conversation, question: str) -> Iterator[Event]:
    """Yield {"type": "token"} events as the model writes, then one "done" or "error" event.

    The query record is committed before the first token is yielded; if it cannot be written,
    the exception propagates and no answer is shown.
    """
    question = question.strip()[:MAX_QUESTION_CHARS]
    started = time.monotonic()
    scope, sources = retrieve(user, question)
    messages = prompts.build_messages(question, sources, history(conversation))
    with transaction.atomic():
        record = QueryRecord.objects.create(
            user_ref=user.pk,
            username=user.get_username(),
            group_keys="|"
            + "".join(f"{g}|" for g in sorted(user.groups.values_list("name", flat=True))),
            conversation_ref=conversation.pk,
            created_at=timezone.now(),
            scope=scope,
            collection_keys=audit.keys([c["id"] for c in scope]),
            document_keys=audit.keys([s["document_id"] for s in sources]),
            question=question,
            retrieved=sources,
            prompt=messages,
            prompt_version=prompts.PROMPT_VERSION,
            model=settings.LLM_MODEL,
            params=llm.params(),
        )
        Message.objects.create(conversation=conversation, role=Message.Role.USER, content=question)
        if not conversation.messages.filter(role=Message.Role.ASSISTANT).exists():
            conversation.title = question[:80]
        conversation.updated_at = timezone.now()
        conversation.save(update_fields=["title", "updated_at"])

    parts: list[str] = []
    usage = llm.Usage()
    first_token_ms: int | None = None
    outcome, error = QueryRecord.Outcome.ERROR, "The answer was interrupted."
    try:
        if not sources:
            parts.append(NOTHING_FOUND)
            outcome = QueryRecord.Outcome.REFUSED if scope else QueryRecord.Outcome.DENIED
            error = ""
            yield {"type": "token", "text": NOTHING_FOUND}
        else:
            for text in llm.stream(messages, usage):
                if first_token_ms is None:
                    first_token_ms = int((time.monotonic() - started) * 1000)
                parts.append(text)
                yield {"type": "token", "text": text}
            outcome, error = QueryRecord.Outcome.ANSWERED, ""
    except llm.LLMUnavailable as exc:
        error = str(exc)
        yield {"type": "error", "message": f"{exc} Please try again in a moment."}
    finally:
        # Runs on success, on model failure and when the browser goes away mid-stream.
        with transaction.atomic():
            content = "".join(parts)
            message = None
            if outcome != QueryRecord.Outcome.ERROR or content:
                message = Message.objects.create(
                    conversation=conversation,
                    role=Message.Role.ASSISTANT,
                    content=content,
                    sources=sources,
                    query=record,
                )
            audit.finalize(
                record,
                answer=content,
                outcome=outcome,
                error=error,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                first_token_ms=first_token_ms,
                latency_ms=int((time.monotonic() - started) * 1000),
            )
    if message is not None and outcome != QueryRecord.Outcome.ERROR:
        yield {"type": "done", "message": message}
