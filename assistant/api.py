"""The OpenAI-compatible API under /v1/, for the official `openai` client, curl and tools that
speak it. Only personal access tokens authenticate here (assistant/tokens.py): the session
cookie is never read, so no CSRF token is asked for. Answers come from chat.answer(), the chat's
own path: the same scope rules, retrieval, prompt, grounding and query record (channel "api").
The body's `model` names a model of the registry (assistant/endpoints.py) or "auto"; one the
policy does not allow over the token's collections is refused, never called."""

import json
import logging
import time
from collections.abc import Generator, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt

from assistant import audit, chat, endpoints, llm, openapi, ratelimit, tokens
from assistant.models import AccessToken, QueryRecord
from assistant.usage import month_start, over_budget
from ingestion.models import Collection

log = logging.getLogger(__name__)

# What a request may carry. The rest is ignored and recorded with the answer (params["ignored"]):
# the server decides scope and generation.
FIELDS = {
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
    "temperature",
}  # fmt: skip
# OpenAI's other generation settings, which clients send with every request: ignoring them
# denies no access. Any other field (collection ids, filters, documents…) may be an attempt to
# choose what is searched, so it is also recorded as a denied access, as in the chat.
HARMLESS = {
    "top_p", "n", "stop", "seed", "presence_penalty", "frequency_penalty", "logit_bias",
    "logprobs", "top_logprobs", "user", "response_format", "tools", "tool_choice",
    "parallel_tool_calls", "functions", "function_call", "store", "metadata", "service_tier",
    "modalities", "audio", "prediction", "reasoning_effort", "verbosity", "web_search_options",
    "prompt_cache_key", "safety_identifier",
}  # fmt: skip
MAX_IGNORED_KEYS, MAX_IGNORED_CHARS = 20, 200
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
}


class Invalid(Exception):
    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.param, self.status = message, param, status


def error_body(status: int, message: str, code: str | None = None, param: str | None = None):
    """OpenAI's shape of an error, which its client turns into the matching exception."""
    return {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code}


def error(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> JsonResponse:
    return JsonResponse({"error": error_body(status, message, code, param)}, status=status)


def no_store(response: HttpResponseBase) -> HttpResponseBase:
    response["Cache-Control"] = "no-store"
    return response


def authenticated(request: HttpRequest) -> AccessToken | HttpResponseBase:
    try:
        return tokens.authenticate(request)
    except tokens.Refused as refused:
        response = error(refused.status, refused.message, refused.code)
        if refused.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="enclave"'
        return response


def wrong_method(request: HttpRequest, allowed: str) -> HttpResponseBase | None:
    if request.method == allowed:
        return None
    response = error(405, gettext("Use %(method)s here.") % {"method": allowed})
    response["Allow"] = allowed
    return response


# --- models: those the policy allows over the token's collections --------------------------


def model_object(name: str) -> dict:
    return {"id": name, "object": "model", "created": 0, "owned_by": "enclave"}


def offered(collections: list[Collection]) -> list[str]:
    """The models a token may name now: the allowed ones (the built-in first), and "auto" when
    one of them takes hard questions (else it would only ever mean the default)."""
    allowed = endpoints.allowed(collections)
    auto = [endpoints.AUTO] if endpoints.auto_offered(allowed) else []
    return [e.name for e in allowed] + auto


def refused_model(name: str, collections: list[Collection]) -> HttpResponse | None:
    """A 404 for a name the registry does not know, a 403 for a model the policy keeps from
    the token's collections; None when the model may answer. "auto" is always accepted: the
    policy then picks among the allowed models."""
    if name == endpoints.AUTO:
        return None
    names = offered(collections)
    if name in names:
        return None
    values = {"name": name[:100], "models": ", ".join(names)}
    if endpoints.named(name) is None:
        message = gettext("There is no model %(name)s here; use one of: %(models)s.") % values
        return error(404, message, "model_not_found", "model")
    if any(c.sensitivity == Collection.Sensitivity.RESTRICTED for c in collections):
        message = gettext(
            "The model %(name)s may not read this token's collections: a restricted collection "
            "is in scope, so only on-premises models answer. Use one of: %(models)s."
        )
    else:
        message = gettext(
            "The model %(name)s is not approved for every collection this token searches. "
            "Use one of: %(models)s."
        )
    return error(403, message % values, "model_not_allowed", "model")


def audited(
    request: HttpRequest,
    token: AccessToken,
    name: str,
    collections: list[Collection],
    refused: HttpResponse,
) -> HttpResponse:
    """A question put to a model the policy keeps from the token's collections is an access
    denial, and recorded as one (an unknown name is only a mistake)."""
    if refused.status_code == 403:
        detail = {
            "reason": "model not allowed for the token's collections",
            "model": name[:100],
            "effective": [c.pk for c in collections],
        }
        audit.record(audit.Action.ACCESS_DENIED, token.user, token, detail=detail, request=request)
    return refused


@csrf_exempt
def models(request: HttpRequest) -> HttpResponseBase:
    token = wrong_method(request, "GET") or authenticated(request)
    if not isinstance(token, AccessToken):
        return no_store(token)
    data = [model_object(name) for name in offered(tokens.readable(token))]
    return no_store(JsonResponse({"object": "list", "data": data}))


@csrf_exempt
def model(request: HttpRequest, model_id: str) -> HttpResponseBase:
    token = wrong_method(request, "GET") or authenticated(request)
    if not isinstance(token, AccessToken):
        return no_store(token)
    if refused := refused_model(model_id, tokens.readable(token)):
        return no_store(refused)
    return no_store(JsonResponse(model_object(model_id)))


def unknown_route(request: HttpRequest, rest: str) -> HttpResponseBase:
    """Any other /v1/ path: a 404 in OpenAI's shape, not the site's HTML page."""
    return no_store(error(404, gettext("There is no such API route."), "unknown_url"))


def openapi_description(request: HttpRequest) -> HttpResponseBase:
    if response := wrong_method(request, "GET"):
        return response
    return JsonResponse(openapi.description())


def too_fast(setting: str, who: object) -> HttpResponse | None:
    limit, period = getattr(settings, setting)
    count, wait = ratelimit.hit(setting, who, period)
    if count <= limit:
        return None
    per = ratelimit.PERIOD_NAMES[period]
    message = gettext("Too many requests: %(limit)s per %(period)s. Try again in %(wait)s s.")
    response = error(429, message % {"limit": limit, "period": per, "wait": wait}, "rate_limit")
    response["Retry-After"] = str(wait)
    return response


@csrf_exempt
def chat_completions(request: HttpRequest) -> HttpResponseBase:
    token = wrong_method(request, "POST") or authenticated(request)
    if not isinstance(token, AccessToken):
        return no_store(token)
    # Per token, then per user: a user's tokens share RATE_LIMIT_QUESTIONS with the chat.
    limited = too_fast("RATE_LIMIT_API_TOKEN", token.pk) or too_fast(
        "RATE_LIMIT_QUESTIONS", token.user_id
    )
    if limited:
        return no_store(limited)
    if spent := over_budget(token.user):
        # Refused before anything is read or recorded, as in the chat.
        audit.record(audit.Action.BUDGET_EXCEEDED, token.user, token, request=request)
        response = error(429, spent, "insufficient_quota")
        response["Retry-After"] = str(seconds_to_next_month())
        return no_store(response)
    collections = tokens.readable(token)
    try:
        body = parse(request)
        if refused := refused_model(body["model"], collections):
            return no_store(audited(request, token, body["model"], collections, refused))
        question, turns, ignored = conversation(body.get("messages"))
        generation = generation_params(body)
    except Invalid as invalid:
        return no_store(error(invalid.status, invalid.message, "invalid_request", invalid.param))
    extra = sorted(set(body) - FIELDS)
    if extra:
        generation["ignored"] = recorded(body, extra)
    ignored["parameters"] = [name for name in extra if name not in HARMLESS]
    if ignored["parameters"] or ignored["messages"]:
        # Not obeyed, but kept: what the client tried to set is part of the audit.
        detail = {
            "reason": "client-supplied parameters ignored",
            **ignored,
            "requested": recorded(body, ignored["parameters"]),
            "effective": [c.pk for c in collections],
        }
        audit.record(audit.Action.ACCESS_DENIED, token.user, token, detail=detail, request=request)
    call = chat.ApiCall(token.pk, turns, collections, generation, model=body["model"])
    events = chat.answer(token.user, None, question, api=call)
    if body.get("stream"):
        options = body.get("stream_options") or {}
        return no_store(streamed(request, events, bool(options.get("include_usage"))))
    return no_store(completed(request, events))


def seconds_to_next_month() -> int:
    """Budgets are per calendar month (assistant/usage.py): the wait is until the next one."""
    following = (month_start() + timedelta(days=32)).replace(day=1)
    return max(1, int((following - timezone.now()).total_seconds()))


# --- the request ------------------------------------------------------------------------------


def parse(request: HttpRequest) -> dict[str, Any]:
    try:
        # Every string made storable as it is read: what is ignored is recorded too.
        body = json.loads(request.body, object_pairs_hook=storable_object)
    except RequestDataTooBig:
        raise Invalid(gettext("The request is too large.")) from None
    except ValueError:
        raise Invalid(gettext("The body must be JSON.")) from None
    if not isinstance(body, dict):
        raise Invalid(gettext("The body must be a JSON object."))
    if not isinstance(body.get("model"), str):
        model = {"model": settings.LLM_NAME}
        raise Invalid(gettext("Name the model, for example %(model)s.") % model, "model")
    if not isinstance(body.get("stream", False), bool | None):
        raise Invalid(gettext("stream must be true or false."), "stream")
    options = body.get("stream_options")
    if options is not None and not (
        isinstance(options, dict) and isinstance(options.get("include_usage", False), bool)
    ):
        raise Invalid(gettext("stream_options must be an object."), "stream_options")
    return body


def storable(text: str) -> str:
    return text.encode("utf-8", "ignore").decode().replace("\x00", "")


def storable_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {storable(key): storable_value(value) for key, value in pairs}


def storable_value(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [storable_value(item) for item in value]
    return value  # numbers, booleans, null, and objects (already made storable by the hook)


def exact_numbers(value: object) -> bool:
    """Every number inside is short enough to survive any database's JSON unchanged."""
    if isinstance(value, list):
        return all(map(exact_numbers, value))
    if isinstance(value, dict):
        return all(map(exact_numbers, value.values()))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return len(json.dumps(value)) <= 20
    return True


def recorded(body: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The ignored fields as sent, within bounds: a client may send anything, and every request
    writes this. A value whose JSON is short is kept as it is (ids stay a list of ids); a long
    one, or one holding a number a database's JSON may not keep exactly (NaN, 10**30), as text
    cut short."""
    kept: dict[str, Any] = {}
    for name in names[:MAX_IGNORED_KEYS]:
        value = body[name]
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except ValueError:
            text = str(value)
        else:
            if len(text) <= MAX_IGNORED_CHARS and exact_numbers(value):
                kept[name[:MAX_IGNORED_CHARS]] = value
                continue
        kept[name[:MAX_IGNORED_CHARS]] = (value if isinstance(value, str) else text)[
            :MAX_IGNORED_CHARS
        ]
    if (rest := len(names) - MAX_IGNORED_KEYS) > 0:
        kept["…"] = f"and {rest} more"
    return kept


def text_of(content: object, param: str) -> str:
    """A message's text: a string, or the text parts of a list of parts; null is empty. NUL
    characters and lone surrogates (JSON's "\\ud800") go: no database column can hold them."""
    if content is None:
        return ""
    if isinstance(content, str):
        return storable(content)
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return storable("\n".join(p["text"] for p in content if isinstance(p.get("text"), str)))
    raise Invalid(gettext("A message's content must be text or a list of parts."), param)


def conversation(messages: object) -> tuple[str, list[tuple[str, str]], dict[str, Any]]:
    """The question (the last user message with text), the user and assistant turns before it,
    and what was ignored: system, developer and tool messages are not obeyed as instructions,
    and messages after the question (an assistant "prefill") are not either."""
    if not isinstance(messages, list):
        raise Invalid(gettext("messages must be a list."), "messages")
    said: list[tuple[str, str]] = []
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise Invalid(
                gettext("Each message needs a role: %(roles)s.") % {"roles": ", ".join(ROLES)},
                f"messages[{n}]",
            )
        said.append((message["role"], text_of(message.get("content"), f"messages[{n}]")))
    asked = [n for n, (role, text) in enumerate(said) if role == "user" and text.strip()]
    if not asked:
        raise Invalid(gettext("Ask a question: send a user message with text."), "messages")
    last = asked[-1]
    if len(said[last][1]) > chat.MAX_QUESTION_CHARS:  # refused, never silently cut
        limit = {"limit": chat.MAX_QUESTION_CHARS}
        message = gettext("The question is too long: at most %(limit)s characters.") % limit
        raise Invalid(message, f"messages[{last}]")
    # Earlier turns are context: each is kept to the same length.
    said = [(role, text[: chat.MAX_QUESTION_CHARS]) for role, text in said]
    turns = [(role, text) for role, text in said[:last] if role in ("user", "assistant")]
    ignored = [
        {"role": role, "content": text}
        for n, (role, text) in enumerate(said)
        if n > last or role not in ("user", "assistant")
    ]
    return said[last][1], turns[-settings.HISTORY_TURNS * 2 :], {"messages": ignored}


def bounded_number(body: dict, name: str, kind: Any, low: float, high: float) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)  # 5.0 is an integer to JSON Schema
    # bool is an int to Python, not to JSON clients.
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        message = gettext("%(name)s must be a number from %(low)s to %(high)s.")
        raise Invalid(message % {"name": name, "low": low, "high": high}, name)
    return value


def generation_params(body: dict) -> dict[str, Any]:
    """The server's parameters with the client's max_tokens and temperature, within bounds."""
    generation = llm.params()
    for name in ("max_tokens", "max_completion_tokens"):
        value = bounded_number(body, name, int, 1, settings.API_MAX_TOKENS)
        if value is not None:
            generation["max_tokens"] = value
    temperature = bounded_number(body, "temperature", int | float, 0, settings.API_MAX_TEMPERATURE)
    if temperature is not None:
        generation["temperature"] = temperature
    return generation


# --- the response -----------------------------------------------------------------------------


def sources(request: HttpRequest, found: list[dict], record: QueryRecord) -> list[dict]:
    """The passages the answer's [n] markers point to, each with a link to its page."""
    names = {c["id"]: c["name"] for c in record.scope}
    shown = []
    for s in found:
        page = reverse("ingestion:document_page", args=[s["document_id"], s["page"]])
        shown.append(
            {
                "n": s["n"],
                "document_id": s["document_id"],
                "title": s["title"],
                "collection": {"id": s["collection_id"], "name": names.get(s["collection_id"])},
                "page": s["page"],
                "chunk": s["chunk_no"],
                "score": s["score"],
                "text": s["text"],
                "url": request.build_absolute_uri(f"{page}?chunk={s['chunk_no']}"),
            }
        )
    return shown


def grounding(record: QueryRecord) -> dict:
    checks = record.grounding
    return {
        "relevant": bool(checks.get("relevant")),
        "checked": "cited" in checks,
        "cited": checks.get("cited", []),
        "dangling": checks.get("dangling", []),
        "unsupported": checks.get("unsupported", []),
    }


def usage_of(usage: llm.Usage) -> dict:
    prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion_id(record_id: int) -> str:
    return f"chatcmpl-{record_id}"


def unavailable(message: str) -> HttpResponse:
    return error(503, message, "model_unavailable")


def completed(request: HttpRequest, events: Generator[chat.Event]) -> HttpResponseBase:
    try:
        return completion(request, events)
    except Exception:
        log.exception("API answer failed")
        failed = gettext("Something went wrong; the question was not answered.")
        return error(500, failed)
    finally:
        events.close()  # finalises the record now, on every way out


def completion(request: HttpRequest, events: Generator[chat.Event]) -> HttpResponseBase:
    for event in events:
        if event["type"] == "error":
            return unavailable(event["message"])
        if event["type"] == "done":
            record = event["record"]
            message = {
                "role": "assistant",
                "content": record.answer,  # without citations of sources not given
                "sources": sources(request, event["sources"], record),
                "grounding": grounding(record),
            }
            choice = {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(event["usage"]),
                "logprobs": None,
            }
            body = {
                "id": completion_id(record.pk),
                "object": "chat.completion",
                "created": int(record.created_at.timestamp()),
                "model": answered_by(record),
                "choices": [choice],
                "usage": usage_of(event["usage"]),
            }
            return JsonResponse(body)
    return unavailable(gettext("The answer was interrupted."))


def answered_by(record: QueryRecord) -> str:
    """The registry name of the model that answered, as the policy recorded it."""
    return str(record.policy.get("model") or settings.LLM_NAME)


def finish_reason(usage: llm.Usage) -> str:
    return "length" if usage.finish_reason == "length" else "stop"


def data(payload: dict | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {text}\n\n".encode()


def streamed(
    request: HttpRequest, events: Generator[chat.Event], include_usage: bool
) -> StreamingHttpResponse:
    """OpenAI's chunks as server-sent events: the role, the text as the model writes it, then a
    last chunk with the finish reason, the sources and the grounding checks; then [DONE]."""
    language = translation.get_language()  # the events are made while the response is sent

    def stream() -> Iterator[bytes]:
        head: dict[str, Any] = {"object": "chat.completion.chunk", "model": settings.LLM_NAME}

        def chunk(delta: dict, reason: str | None = None, **extra: object) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}
            return data({**head, "choices": [choice], **extra})

        with translation.override(language):
            try:
                for event in events:
                    if event["type"] == "record":
                        head |= {"id": completion_id(event["id"]), "created": int(time.time())}
                        head["model"] = event["model"]  # the registry name the policy chose
                        yield chunk({"role": "assistant", "content": ""})
                    elif event["type"] == "token":
                        yield chunk({"content": event["text"]})
                    elif event["type"] == "error":
                        unavailable = error_body(503, event["message"], "model_unavailable")
                        yield data({"error": unavailable})
                        return
                    elif event["type"] == "done":
                        record = event["record"]
                        found = sources(request, event["sources"], record)
                        final = {"sources": found, "grounding": grounding(record)}
                        yield chunk(final, finish_reason(event["usage"]))
                        if include_usage:
                            yield data({**head, "choices": [], "usage": usage_of(event["usage"])})
                yield data("[DONE]")
            except Exception:
                log.exception("API answer failed")
                failed = gettext("Something went wrong; the question was not answered.")
                yield data({"error": error_body(500, failed)})
            finally:
                events.close()  # finalises the record now, whoever else holds the generator

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["X-Accel-Buffering"] = "no"
    return response
