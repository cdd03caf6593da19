"""The only module that talks to model servers: vLLM's (or any) OpenAI-compatible API, streamed.
Which server answers is assistant/endpoints.py's decision; the built-in one when none is named.
The server sets every generation parameter; nothing from the browser reaches the request."""

from collections.abc import Generator
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.translation import gettext, gettext_noop

if TYPE_CHECKING:
    from openai import OpenAI

    from assistant.endpoints import Endpoint


class LLMUnavailable(Exception):
    """The model server is down, slow or failing; the message is safe to show to users. str()
    is English (for the query record and the log), shown() in the user's language."""

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message % values if values else message)
        self.message, self.values = message, values

    def shown(self) -> str:
        message = gettext(self.message)
        return message % self.values if self.values else message


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    extra: dict = field(default_factory=dict)


PARAMS = ("model", "max_tokens", "temperature", "top_p")


def params() -> dict:
    return {
        "model": settings.LLM_MODEL,
        "max_tokens": settings.LLM_MAX_TOKENS,
        "temperature": settings.LLM_TEMPERATURE,
        "top_p": settings.LLM_TOP_P,
    }


def client(endpoint: "Endpoint | None" = None) -> "OpenAI":
    from assistant import endpoints

    endpoint = endpoint or endpoints.builtin()
    timeouts = (settings.LLM_READ_TIMEOUT, settings.LLM_CONNECT_TIMEOUT)
    return connection(endpoint.base_url, endpoint.api_key(), *timeouts)


@cache
def connection(base_url: str, api_key: str, read: float, connect: float) -> "OpenAI":
    """One client (and its connection pool) per server, key and timeouts."""
    from openai import OpenAI, Timeout

    timeout = Timeout(read, connect=connect)
    return OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)


def unavailable(exc: Exception) -> LLMUnavailable:
    """What a failed request to the model server tells the user (and the record)."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return LLMUnavailable(gettext_noop("The language model did not answer in time."))
    if isinstance(exc, openai.APIConnectionError):
        return LLMUnavailable(gettext_noop("The language model server cannot be reached."))
    if isinstance(exc, openai.APIStatusError):
        return LLMUnavailable(
            gettext_noop("The language model server returned an error (HTTP %(status)s)."),
            status=exc.status_code,
        )
    raise exc


def stream(
    messages: list[dict[str, str]],
    usage: Usage,
    generation: dict | None = None,
    endpoint: "Endpoint | None" = None,
) -> Generator[str]:
    """Yield text as the model produces it; fill `usage` when the stream ends. Closing the
    generator early (stop, browser gone) closes the connection, which makes vLLM abort the
    request instead of generating on for nobody."""
    import openai

    try:
        wanted = {k: v for k, v in (generation or params()).items() if k in PARAMS}
        if endpoint is not None:
            wanted["model"] = endpoint.model
        response = client(endpoint).chat.completions.create(  # type: ignore[call-overload]
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            # An API call's own max_tokens and temperature, within bounds (assistant/api.py).
            **wanted,
        )
        try:
            for event in response:
                if event.usage:
                    usage.prompt_tokens = event.usage.prompt_tokens
                    usage.completion_tokens = event.usage.completion_tokens
                for choice in event.choices:
                    if choice.finish_reason:
                        usage.finish_reason = choice.finish_reason
                    if choice.delta and choice.delta.content:
                        yield choice.delta.content
        finally:
            response.close()
    except openai.OpenAIError as exc:
        raise unavailable(exc) from None


def complete(messages: list[dict[str, str]], max_tokens: int) -> str:
    """A short, deterministic, non-streamed completion (query rewriting); fails fast."""
    import openai

    try:
        response = client().chat.completions.create(
            messages=messages,  # type: ignore[arg-type]
            model=settings.LLM_MODEL,
            max_tokens=max_tokens,
            temperature=0,
            timeout=min(settings.LLM_READ_TIMEOUT, 10),
        )
    except openai.OpenAIError as exc:
        raise LLMUnavailable(
            gettext_noop("The language model failed (%(error)s)."), error=type(exc).__name__
        ) from None
    return response.choices[0].message.content or ""


def ping() -> str:
    """A real one-token generation: proves the model answers, not only that a port is open."""
    import openai

    try:
        response = client().chat.completions.create(
            messages=[{"role": "user", "content": "Say OK."}],
            model=settings.LLM_MODEL,
            max_tokens=1,
            temperature=0,
            timeout=15,
        )
    except openai.OpenAIError as exc:
        raise LLMUnavailable(f"{type(exc).__name__}") from None
    return response.choices[0].message.content or ""


def complete_json(
    messages: list[dict[str, str]],
    schema: dict,
    name: str,
    max_tokens: int,
    usage: Usage,
    endpoint: "Endpoint | None" = None,
) -> str:
    """A non-streamed completion decoded under a JSON schema (vLLM's structured outputs): the
    text parses and follows `schema` unless it was cut at max_tokens. Fills `usage`."""
    import openai

    try:
        response = client(endpoint).chat.completions.create(  # type: ignore[call-overload]
            messages=messages,
            model=endpoint.model if endpoint else settings.LLM_MODEL,
            max_tokens=max_tokens,
            temperature=0,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            },
            # Non-streamed, nothing arrives until the whole answer is ready.
            timeout=settings.BATCH_REQUEST_TIMEOUT,
        )
    except openai.OpenAIError as exc:
        raise unavailable(exc) from None
    if response.usage:
        usage.prompt_tokens = response.usage.prompt_tokens
        usage.completion_tokens = response.usage.completion_tokens
    choice = response.choices[0]
    usage.finish_reason = choice.finish_reason
    return choice.message.content or ""
