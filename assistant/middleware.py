import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url

SESSION_ENDED = "Your session has ended; please sign in again."


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
