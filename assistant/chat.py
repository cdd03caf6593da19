"""answer(): scope → retrieve → prompt → record → stream → record the answer."""

import logging
import re
import time
from collections.abc import Generator
from contextlib import closing
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy

from assistant import audit, endpoints, grounding, llm, metrics, prompts
from assistant import scope as conversation_scope
from assistant.models import Conversation, Message, QueryRecord
from assistant.usage import record_usage
from ingestion import index, lexical
from ingestion.models import Collection

log = logging.getLogger(__name__)
MAX_QUESTION_CHARS = 4000
MAX_REWRITE_CHARS = 500
# Said in the asker's language and kept so in the message and the record, like the model's words.
NOTHING_FOUND = gettext_lazy(
    "I found nothing about this in the documents you have access to, so I cannot answer it."
)

Event = dict[str, Any]


def retrieve(
    collections: list[Collection], question: str, turns: list[tuple[str, str]]
) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """The scope searched (the conversation's collections the user may read now, from
    `conversation_scope.effective`), the numbered sources found in it, and what was searched
    for."""
    scope = conversation_scope.named(collections)
    if not collections:
        # An empty scope never reaches Qdrant, nor the model for a rewrite.
        return scope, [], {"search_query": question, "rewrite": "none"}
    searched = search_query(question, turns)
    with metrics.RETRIEVAL_SECONDS.time():
        hits = index.search(
            searched["search_query"], [c.pk for c in collections], settings.RETRIEVAL_TOP_K
        )
    sources = [{"n": n, **asdict(hit)} for n, hit in enumerate(hits, start=1)]
    return scope, sources, searched


def question_language(question: str) -> str:
    """The question's language by its function words; one too short to tell ("¿Dieta diaria
    en Francia?") is taken to be in the language its asker reads the pages in."""
    reader = lexical.LANGUAGES.get((translation.get_language() or "en")[:2], "english")
    return lexical.language_of(question, unclear=reader)


def belonging(retrieved: list[dict]) -> list[dict]:
    """The passages worth showing: none when even the best is far from the question, else those
    within RETRIEVAL_RELATIVE_CUT of the best (measured in bench/sources.py), renumbered."""
    best = max((s["score"] for s in retrieved), default=None)
    if best is None or best < settings.RETRIEVAL_MIN_SCORE:
        return []
    kept = [s for s in retrieved if s["score"] >= best - settings.RETRIEVAL_RELATIVE_CUT]
    return [{**s, "n": n} for n, s in enumerate(kept, start=1)]


Exchange = tuple[str, str, list[int] | None]  # role, content, the collections it searched


def history(conversation: Conversation, before: int | None = None) -> list[Exchange]:
    """The last turns, each with the ids of the collections its exchange searched (None when
    no answer recorded it): endpoints.turns_for keeps restricted ones from external models."""
    messages = conversation.messages.select_related("query")
    if before is not None:
        messages = messages.filter(id__lt=before)
    recent = list(reversed(messages.order_by("-created_at", "-id")[: settings.HISTORY_TURNS * 2]))
    searched: dict[int, list[int]] = {}  # a question and its answer share their record's chain
    turns: list[Exchange] = []
    for i, m in enumerate(recent):
        answer = m if m.role == Message.Role.ASSISTANT else next(iter(recent[i + 1 : i + 2]), None)
        record = answer.query if answer is not None and answer.query_id else None
        if record is not None and record.pk not in searched:
            searched[record.pk] = asked_over(record)
        turns.append((m.role, m.content, searched[record.pk] if record is not None else None))
    return turns


def asked_over(record: QueryRecord) -> list[int]:
    """The collections a question was searched over, by its record and those it regenerates:
    a question first asked over a restricted collection stays restricted when regenerated
    after the scope was narrowed (the chain ends where the question was typed or edited)."""
    ids: list[int] = []
    current: QueryRecord | None = record
    while current is not None:
        ids += [c["id"] for c in current.scope if c["id"] not in ids]
        previous = current.regenerates_ref
        current = QueryRecord.objects.filter(pk=previous).first() if previous else None
    return ids


def plain(turns: list[Exchange]) -> list[tuple[str, str]]:
    return [(role, content) for role, content, _ in turns]


def search_query(question: str, turns: list[tuple[str, str]]) -> dict[str, str]:
    """What to search for, and how it was made: a follow-up ("and for damaged goods?") is
    rewritten by the model into a stand-alone query, or joined to the previous question."""
    if not turns:
        return {"search_query": question, "rewrite": "none"}
    rejected = {}
    if settings.QUERY_REWRITE:
        try:
            reply = llm.complete(prompts.build_rewrite_messages(question, turns), max_tokens=64)
            rewritten = (reply.strip().splitlines() or [""])[0].strip(" \"'")[:MAX_REWRITE_CHARS]
            if rewritten and faithful(rewritten, question, turns):
                return {"search_query": rewritten, "rewrite": "llm"}
            rejected = {"rejected_rewrite": rewritten}
        except llm.LLMUnavailable:
            pass  # the answer itself will say the model is down, if it still is
    previous = next((content for role, content in reversed(turns) if role == "user"), "")
    return {"search_query": f"{previous} {question}".strip(), "rewrite": "fallback", **rejected}


QUESTION_START = re.compile(
    r"(what|which|who|whom|whose|when|where|why|how|is|are|was|were|do|does|did|can|could|may|"
    r"might|must|should|shall|will|would|has|have|had)\b",
    re.IGNORECASE,
)


def faithful(rewritten: str, question: str, turns: list[tuple[str, str]]) -> bool:
    """A rewrite is used only if it is a question, keeps the question's own terms, and adds at
    most one term the conversation never used: small models often turn a follow-up into an
    invented statement, which would then be searched."""
    if not (rewritten.endswith("?") or QUESTION_START.match(rewritten)):
        return False
    asked = set(lexical.terms(question))
    said = asked.union(*(lexical.terms(content) for _, content in turns))
    terms = set(lexical.terms(rewritten))
    return asked <= terms and len(terms - said) <= 1


@dataclass
class ApiCall:
    """A question through the API (assistant/api.py): no stored conversation, so the client's
    earlier messages, the token's collections as of now and the generation parameters come
    with it."""

    token_id: int
    turns: list[tuple[str, str]]
    collections: list[Collection]
    params: dict[str, Any]  # llm.params() with the client's allowed values, and what it ignored
    model: str = ""  # the model the client named ("" or LLM_NAME: the default)


def answer(
    user: User,
    conversation: Conversation | None,
    question: str,
    *,
    regenerates: QueryRecord | None = None,
    edits: QueryRecord | None = None,
    api: ApiCall | None = None,
) -> Generator[Event]:
    """Yield "status" events, one "record" event, "token" events as the model writes, then one
    "done" or "error" event. Regenerating or editing replaces the conversation's last exchange.
    An API call (`api`, no conversation) goes the same way but stores no messages.

    The query record is committed before the first token is yielded; if it cannot be written,
    the exception propagates and no answer is shown.
    """
    question = question.replace("\x00", "").strip()[:MAX_QUESTION_CHARS]  # NUL: no column holds it
    started = time.monotonic()
    replaced = None
    if api is not None:
        # The client's own history: where it came from is unknown, so no external model sees it.
        collections = api.collections
        turns: list[Exchange] = [(role, content, None) for role, content in api.turns]
    else:
        assert conversation is not None
        replaced = last_exchange(conversation) if regenerates or edits else None
        turns = history(conversation, before=replaced)
        collections = list(conversation_scope.effective(user, conversation))
    generation = api.params if api is not None else llm.params()
    yield {"type": "status", "phase": "searching", "text": searching(collections)}
    # Follow-ups are rewritten by the built-in (local) model, whatever answers.
    scope, retrieved, searched = retrieve(collections, question, plain(turns))
    best = max((s["score"] for s in retrieved), default=None)
    # Passages far from the question, or far below the best one, would only invite the model
    # to improvise, and would be listed as sources of an answer they have no part in.
    sources = belonging(retrieved)
    relevant = bool(sources)
    # The scope decides which models may read it; the pick is used only if among them.
    picked = api.model if api is not None else conversation.model if conversation else ""
    hard = ""
    if picked == endpoints.AUTO:
        previous = latest_record(conversation) if conversation is not None else None
        hard = endpoints.hard_reason(sources, regenerates or edits or previous)
    guarded = collections
    if regenerates is not None:
        # The same words again: a model that may not read where they were asked may not read
        # them now (retrieval still searches only the scope of now).
        searched_now = {c.pk for c in collections}
        earlier = [pk for pk in asked_over(regenerates) if pk not in searched_now]
        guarded = [*collections, *Collection.objects.filter(pk__in=earlier).order_by("id")]
    decision = endpoints.decide(guarded, picked, hard)
    endpoint = decision.endpoint
    generation = {**generation, "model": endpoint.model}
    language = question_language(question)  # the answer's too: the model is told to use it
    sent_turns = endpoints.turns_for(endpoint, turns)
    if len(sent_turns) < len(turns):
        decision.policy["history_withheld"] = len(turns) - len(sent_turns)
    # The oldest turns give way when the prompt would not fit the model's context.
    room = endpoint.context_length - int(generation.get("max_tokens") or settings.LLM_MAX_TOKENS)
    fitted = prompts.fitting(question, sources, sent_turns, room)
    if len(fitted) < len(sent_turns):
        decision.policy["history_dropped_for_context"] = len(sent_turns) - len(fitted)
    sent_turns = fitted
    messages = prompts.build_messages(question, sources, sent_turns, language)
    checks: dict[str, Any] = {
        "language": language,
        **searched,
        "best_score": best,
        "min_score": settings.RETRIEVAL_MIN_SCORE,
        "relative_cut": settings.RETRIEVAL_RELATIVE_CUT,
        "shown": [s["point_id"] for s in sources],
        "relevant": relevant,
    }
    with transaction.atomic():
        record = QueryRecord.objects.create(
            user_ref=user.pk,
            username=user.get_username(),
            group_keys=QueryRecord.group_keys_of(user.groups.values_list("name", flat=True)),
            conversation_ref=conversation.pk if conversation is not None else None,
            created_at=timezone.now(),
            scope=scope,
            collection_keys=audit.keys([c["id"] for c in scope]),
            document_keys=audit.keys([s["document_id"] for s in sources]),
            question=question,
            retrieved=retrieved,
            prompt=messages,
            prompt_version=prompts.PROMPT_VERSION,
            model=endpoint.model,
            endpoint=endpoint.location,
            policy=decision.policy,
            params=generation,
            grounding=checks,
            regenerates_ref=regenerates.pk if regenerates else None,
            edits_ref=edits.pk if edits else None,
            channel=QueryRecord.Channel.API if api is not None else QueryRecord.Channel.CHAT,
            token_ref=api.token_id if api is not None else None,
        )
        if conversation is not None:
            if replaced is not None:
                conversation.messages.filter(id__gte=replaced).delete()
            Message.objects.create(
                conversation=conversation, role=Message.Role.USER, content=question
            )
            if not conversation.messages.filter(role=Message.Role.ASSISTANT).exists():
                conversation.title = question[:80]
            conversation.updated_at = timezone.now()
            conversation.save(update_fields=["title", "updated_at"])

    parts: list[str] = []
    usage = llm.Usage()
    first_token_ms: int | None = None
    outcome, error = QueryRecord.Outcome.ERROR, "The answer was interrupted."
    try:
        yield {"type": "record", "id": record.pk, "model": decision.policy["model"]}
        if not sources:
            refusal = str(NOTHING_FOUND)
            parts.append(refusal)
            outcome = QueryRecord.Outcome.REFUSED if scope else QueryRecord.Outcome.DENIED
            error = ""
            yield {"type": "token", "text": refusal}
        else:
            yield {"type": "status", "phase": "writing", "text": gettext("Writing…")}
            stopped = False
            # closing(): leaving the loop early closes the model's stream, and so its request.
            asked_to_stop = partial(stop_requested, record.pk)
            tokens = llm.stream(messages, usage, generation, endpoint, should_stop=asked_to_stop)
            with closing(tokens):
                for text in tokens:
                    if asked_to_stop():
                        stopped = True
                        break
                    if first_token_ms is None:
                        first_token_ms = int((time.monotonic() - started) * 1000)
                    parts.append(text)
                    yield {"type": "token", "text": text}
            # A stream cut before its first token (llm.interrupt_when) ends without a reason.
            stopped = stopped or (usage.finish_reason is None and asked_to_stop())
            outcome = QueryRecord.Outcome.STOPPED if stopped else QueryRecord.Outcome.ANSWERED
            error = ""
    except llm.LLMUnavailable as exc:
        error = str(exc)  # English in the record, the user's language on screen
        shown = gettext("%(error)s Please try again in a moment.") % {"error": exc.shown()}
        yield {"type": "error", "message": shown}
    finally:
        # Runs on success, on model failure and when the browser goes away mid-stream.
        content = "".join(parts)
        if outcome in (QueryRecord.Outcome.ANSWERED, QueryRecord.Outcome.STOPPED):
            # Dangling citations go; sentences no cited passage supports are flagged. The
            # model's own words stay in the record when they differ.
            try:
                checked = grounding.check(content, sources, language)
            except Exception:
                # The answer is kept and recorded unchecked rather than lost with the record.
                log.exception("grounding check failed for query record %s", record.pk)
                record.grounding = {**checks, "check_failed": True}
            else:
                record.grounding = {**checks, **checked.as_record()}
                if checked.answer != content:
                    record.grounding["model_answer"], content = content, checked.answer
        latency_ms = int((time.monotonic() - started) * 1000)
        with transaction.atomic():
            message = None
            if conversation is not None and (outcome != QueryRecord.Outcome.ERROR or content):
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
                latency_ms=latency_ms,
                grounding=record.grounding,
            )
            record_usage(record, user, collections, endpoint)
        metrics.count_answer(
            record.channel,
            outcome,
            first_token_ms,
            latency_ms,
            usage.prompt_tokens,
            usage.completion_tokens,
        )
    if outcome != QueryRecord.Outcome.ERROR:
        # The API has no message: it reads the answer, its sources and checks from the record.
        done = {"type": "done", "message": message, "outcome": outcome, "record": record}
        yield {**done, "sources": sources, "usage": usage}


# --- the answer's lifecycle: status, stop, regenerate, edit --------------------------------


def searching(collections: list[Collection]) -> str:
    """The status shown while retrieval runs, naming what retrieve() searches."""
    names = ", ".join(c.name for c in collections)
    return gettext("Searching %(names)s…") % {"names": names} if names else gettext("Searching…")


def last_exchange(conversation: Conversation) -> int | None:
    """The id of the conversation's last question: it and what follows are replaced."""
    last = conversation.messages.filter(role=Message.Role.USER).order_by("-id").first()
    return last.pk if last else None


def latest_record(conversation: Conversation) -> QueryRecord | None:
    """The record of the conversation's last question: only that one is regenerated or edited."""
    return QueryRecord.objects.filter(conversation_ref=conversation.pk).order_by("-id").first()


def stop_key(record_id: int) -> str:
    return f"answer-stop:{record_id}"


def stop(record: QueryRecord) -> None:
    """Ask the answer loop, in whichever thread or web process runs it, to stop."""
    cache.set(stop_key(record.pk), True, timeout=3600)


def stop_requested(record_id: int) -> bool:
    return bool(cache.get(stop_key(record_id)))
