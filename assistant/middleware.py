import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import resolve_url
from django.utils import translation

from assistant.logs import current_request_id, request_id_from
from assistant.models import Preference

SESSION_ENDED = translation.gettext_lazy("Your session has ended; please sign in again.")
LANGUAGE_SESSION_KEY = "language"  # the user's saved choice, read once per session

access_log = logging.getLogger("assistant.access")


def security_headers(get_response: Callable[[HttpRequest], HttpResponse]):
    """A strict CSP and the browser-hardening headers on every response, error pages included;
    pages with private content are never cached.

    Django's SecurityMiddleware and XFrameOptionsMiddleware set most of these too, but an
    exception raised inside a middleware (a disallowed host) skips the process_response of that
    middleware and of those below it: this one is outermost and fills what they left out."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        headers = {
            "Content-Security-Policy": settings.CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": settings.X_FRAME_OPTIONS,
            "Referrer-Policy": settings.SECURE_REFERRER_POLICY,
            "Cross-Origin-Opener-Policy": settings.SECURE_CROSS_ORIGIN_OPENER_POLICY,
        }
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        # No user when the request failed before the authentication middleware ran.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            response.headers["Cache-Control"] = "no-store"
        return response

    return middleware


def session_timeouts(get_response: Callable[[HttpRequest], HttpResponse]):
    """Sign out a session idle for SESSION_IDLE_SECONDS, or signed in SESSION_COOKIE_AGE ago.

    Django's own expiry slides whenever the session is saved (and this saves it on every
    request), so the absolute limit is checked here against the time of sign-in."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and session_expired(request):
            logout(request)
            if wants_fragment(request):
                # htmx follows HX-Redirect whatever the status; fetch() shows the text.
                login_url = resolve_url(settings.LOGIN_URL)
                return HttpResponse(SESSION_ENDED, status=401, headers={"HX-Redirect": login_url})
            messages.info(request, SESSION_ENDED)  # login_required now sends them to sign in
        response = get_response(request)
        if request.user.is_authenticated:  # also right after signing in
            now = int(time.time())
            request.session.setdefault("signed_in_at", now)
            request.session["seen_at"] = now
        return response

    return middleware


def session_expired(request: HttpRequest) -> bool:
    now = time.time()
    idle = now - request.session.get("seen_at", now)
    age = now - request.session.get("signed_in_at", now)
    return idle > settings.SESSION_IDLE_SECONDS or age > settings.SESSION_COOKIE_AGE


def wants_fragment(request: HttpRequest) -> bool:
    streaming = "text/event-stream" in request.headers.get("Accept", "")
    return streaming or request.headers.get("HX-Request") == "true"


def user_language(get_response: Callable[[HttpRequest], HttpResponse]):
    """Speak the language the signed-in user chose (LocaleMiddleware, before this, has already
    picked the cookie's or the browser's). The choice is read from the database once a session."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            language = request.session.get(LANGUAGE_SESSION_KEY)
            if language is None:
                saved = Preference.objects.filter(user=request.user).values_list("language")
                language = request.session[LANGUAGE_SESSION_KEY] = (saved.first() or ("",))[0]
            if language:
                translation.activate(language)
                request.LANGUAGE_CODE = language
        return get_response(request)

    return middleware


def request_ids(get_response: Callable[[HttpRequest], HttpResponseBase]):
    """Give each request an id (the caller's X-Request-ID when sane), return it in the response,
    put it on every log line made meanwhile, and end with one access line: user, route, status
    and duration. Never the query string: a search there can be a user's question."""

    def middleware(request: HttpRequest) -> HttpResponseBase:
        started = time.monotonic()
        request_id = request_id_from(request.headers.get("X-Request-ID"))
        current_request_id.set(request_id)
        response = get_response(request)
        response.headers["X-Request-ID"] = request_id

        def finish() -> None:
            user = getattr(request, "user", None)  # none when an outer middleware refused it
            match = request.resolver_match
            route = match.view_name if match else None
            duration_ms = round((time.monotonic() - started) * 1000, 1)
            access_log.info(
                "%s %s %s %.0f ms",
                request.method,
                route,
                response.status_code,
                duration_ms,
                extra={
                    "method": request.method,
                    "user_id": user.pk if user is not None and user.is_authenticated else None,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": duration_ms,
                },
            )
            current_request_id.set(None)  # a gthread thread serves the next request next

        # An answer is made while its stream is sent, after this returns: the id stays set for
        # it and the access line waits for its end. A file needs neither (and keeps sendfile).
        if isinstance(response, StreamingHttpResponse) and not isinstance(response, FileResponse):
            content = response.streaming_content  # read before it is replaced by the wrapper
            if response.is_async:
                response.streaming_content = streamed_async(content, request_id, finish)
            else:
                response.streaming_content = streamed(content, request_id, finish)
        else:
            finish()
        return response

    return middleware


def streamed(content, request_id: str, finish: Callable[[], None]) -> Iterator[bytes]:
    current_request_id.set(request_id)  # the server may iterate after other requests ran here
    try:
        yield from content
    finally:  # also when the client went away: the server then closes the response
        finish()


async def streamed_async(
    content, request_id: str, finish: Callable[[], None]
) -> AsyncIterator[bytes]:
    current_request_id.set(request_id)
    try:
        async for chunk in content:
            yield chunk
    finally:
        finish()
