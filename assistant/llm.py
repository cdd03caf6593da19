"""The only module that talks to model servers: vLLM's (or any) OpenAI-compatible API, streamed.
Which server answers is assistant/endpoints.py's decision; the built-in one when none is named.
The server sets every generation parameter; nothing from the browser reaches the request."""

import json
import socket
import threading
from collections.abc import Callable, Generator
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.translation import gettext, gettext_noop

if TYPE_CHECKING:
    import httpx
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


STOP_POLL_SECONDS = 0.5


def stream(
    messages: list[dict[str, str]],
    usage: Usage,
    generation: dict | None = None,
    endpoint: "Endpoint | None" = None,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[str]:
    """Yield text as the model produces it; fill `usage` when the stream ends. Closing the
    generator early (stop, browser gone) closes the connection, which makes vLLM abort the
    request instead of generating on for nobody. Until the first text, `should_stop` is
    polled as well (see interrupt_when): a long prompt or a queue can hold the first token back.

    The server-sent events are read with httpx directly, not the OpenAI client: its per-chunk
    objects cost ~0.35 ms of CPU a token (measured), a core's worth at 100 streams of 20 tokens
    a second, all of it holding the GIL that every other request of the process waits for."""
    import httpx

    from assistant import endpoints

    endpoint = endpoint or endpoints.builtin()
    body = {k: v for k, v in (generation or params()).items() if k in PARAMS}
    # An API call's own max_tokens and temperature, within bounds (assistant/api.py).
    body |= {"model": endpoint.model, "messages": messages, "stream": True}
    body["stream_options"] = {"include_usage": True}
    timeouts = (settings.LLM_READ_TIMEOUT, settings.LLM_CONNECT_TIMEOUT)
    pool = http(endpoint.base_url, endpoint.api_key(), *timeouts)
    try:
        with pool.stream("POST", "chat/completions", json=body) as response:
            if response.is_error:
                raise LLMUnavailable(
                    gettext_noop("The language model server returned an error (HTTP %(status)s)."),
                    status=response.status_code,
                )
            waiting = interrupt_when(should_stop, response) if should_stop else None
            try:
                yield from _texts(response, usage, waiting)
            except (httpx.TransportError, ValueError):
                if waiting is not None and waiting.interrupted:
                    return  # stopped before the first token: the stream simply ends
                raise
            finally:
                if waiting is not None:
                    waiting.done.set()
    except httpx.TimeoutException:
        raise LLMUnavailable(gettext_noop("The language model did not answer in time.")) from None
    except (httpx.TransportError, ValueError):  # connection lost, or not JSON
        raise LLMUnavailable(gettext_noop("The language model server cannot be reached.")) from None


@dataclass
class Waiting:
    done: threading.Event = field(default_factory=threading.Event)
    interrupted: bool = False


def interrupt_when(should_stop: Callable[[], bool], response: "httpx.Response") -> Waiting:
    """Until the first text (`done`), poll `should_stop` in a thread; when it says stop, shut
    the connection's socket down: the read blocked on it returns at once, and vLLM, seeing the
    client gone, aborts the request (it listens for a disconnect while it prefills)."""
    waiting = Waiting()
    conn = response.extensions["network_stream"].get_extra_info("socket")

    def watch() -> None:
        while not waiting.done.wait(STOP_POLL_SECONDS):
            if should_stop():
                waiting.interrupted = True
                with suppress(OSError):  # closed already
                    conn.shutdown(socket.SHUT_RDWR)
                return

    threading.Thread(target=watch, name="llm-stop-watch", daemon=True).start()
    return waiting


def _texts(response: "httpx.Response", usage: Usage, waiting: Waiting | None) -> Generator[str]:
    """The text deltas of a chat completion's server-sent events."""
    for line in response.iter_lines():
        data = line[5:].strip() if line.startswith("data:") else ""
        if not data or data == "[DONE]":
            continue
        event = json.loads(data)
        if "error" in event:  # vLLM reports a failure mid-stream as an event
            message = gettext_noop("The language model failed (%(error)s).")
            raise LLMUnavailable(message, error="stream error")
        if event.get("usage"):
            usage.prompt_tokens = event["usage"].get("prompt_tokens")
            usage.completion_tokens = event["usage"].get("completion_tokens")
        for choice in event.get("choices") or ():
            usage.finish_reason = choice.get("finish_reason") or usage.finish_reason
            if text := (choice.get("delta") or {}).get("content"):
                if waiting is not None:
                    waiting.done.set()  # from here the caller checks between tokens
                yield text


@cache
def http(base_url: str, api_key: str, read: float, connect: float) -> "httpx.Client":
    """One pool per server and key, large enough for every stream a web process holds."""
    import httpx

    return httpx.Client(
        base_url=base_url.rstrip("/") + "/",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=httpx.Timeout(read, connect=connect),
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
    )


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
