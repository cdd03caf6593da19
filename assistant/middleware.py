from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


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
