"""Rate limits: a fixed window per user (or, for sign-in, per client address) and action,
counted in Django's cache (Redis in the services profile, so every web process shares one
count)."""

import functools
import math
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import ngettext, ngettext_lazy, pgettext_lazy

from assistant import audit
from assistant.access import AuthedRequest

PERIOD_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}  # for the audit trail
PERIODS = {
    1: pgettext_lazy("rate limit: 20 per …", "second"),
    60: pgettext_lazy("rate limit: 20 per …", "minute"),
    3600: pgettext_lazy("rate limit: 20 per …", "hour"),
    86400: pgettext_lazy("rate limit: 20 per …", "day"),
}
# Whole sentences per action: word order and plurals differ between languages.
TOO_FAST = {
    "asking": ngettext_lazy(
        "You are asking too fast: %(limit)d question per %(period)s.",
        "You are asking too fast: %(limit)d questions per %(period)s.",
        "limit",
    ),
    "uploading": ngettext_lazy(
        "You are uploading too fast: %(limit)d upload per %(period)s.",
        "You are uploading too fast: %(limit)d uploads per %(period)s.",
        "limit",
    ),
    "signing in": ngettext_lazy(
        "You are signing in too fast: %(limit)d attempt per %(period)s.",
        "You are signing in too fast: %(limit)d attempts per %(period)s.",
        "limit",
    ),
}

View = Callable[..., HttpResponseBase]


def hit(action: str, who: object, period: int) -> tuple[int, int]:
    """Count one request: how many there were in this window, and the seconds until it ends."""
    now = time.time()
    window = int(now // period)
    key = f"ratelimit:{action}:{who}:{window}"
    # add() then incr() is atomic; the key outlives its window, so incr() never finds it gone.
    cache.add(key, 0, timeout=2 * period)
    return cache.incr(key), math.ceil((window + 1) * period - now)


def too_fast(action: str, limit: int, period: int, wait: int) -> HttpResponse:
    # Plain text: the chat's script shows a 429's body to the user as it is.
    refused = TOO_FAST[action] % {"limit": limit, "period": PERIODS[period]}
    again = ngettext("Try again in %(wait)d second.", "Try again in %(wait)d seconds.", wait)
    message = refused + " " + again % {"wait": wait}
    response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(wait)
    return response


def per_user(setting: str, action: str) -> Callable[[View], View]:
    """Refuse a user's requests beyond `settings.<setting>` (count, period) with a 429."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: AuthedRequest, *args: object, **kwargs: object) -> HttpResponseBase:
            limit, period = getattr(settings, setting)
            count, wait = hit(setting, request.user.pk, period)
            if count > limit:
                return too_fast(action, limit, period, wait)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def sign_in_attempts(view: View) -> View:
    """Refuse sign-in attempts (POSTs) from one address beyond LOGIN_RATE_PER_ADDRESS with a
    429, before they are checked or recorded; the first refusal in a window is one event."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        limit, period = settings.LOGIN_RATE_PER_ADDRESS
        address = audit.client_ip(request)
        count, wait = hit("LOGIN_RATE_PER_ADDRESS", address, period)
        if count <= limit:
            return view(request, *args, **kwargs)
        if count == limit + 1:
            reason = f"sign-in attempts over {limit} per {PERIOD_NAMES[period]} from this address"
            audit.record(
                audit.Action.ACCESS_DENIED, None, detail={"reason": reason}, request=request
            )
        return too_fast("signing in", limit, period, wait)

    return wrapped
