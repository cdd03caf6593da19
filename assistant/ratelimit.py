"""Per-user rate limits: a fixed window per user and action, counted in Django's cache (Redis in
the services profile, so every web process shares one count)."""

import functools
import math
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.http.response import HttpResponseBase

from assistant.access import AuthedRequest

PERIOD_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}

View = Callable[..., HttpResponseBase]


def hit(action: str, user_id: int, limit: int, period: int) -> int:
    """Count one request: 0 when it is within the limit, else the seconds until the window ends."""
    now = time.time()
    window = int(now // period)
    key = f"ratelimit:{action}:{user_id}:{window}"
    # add() then incr() is atomic; the key outlives its window, so incr() never finds it gone.
    cache.add(key, 0, timeout=2 * period)
    if cache.incr(key) <= limit:
        return 0
    return math.ceil((window + 1) * period - now)


def too_fast(verb: str, noun: str, limit: int, period: int, wait: int) -> HttpResponse:
    # Plain text: the chat's script shows a 429's body to the user as it is.
    message = (
        f"You are {verb} too fast: {limit} {noun} per {PERIOD_NAMES[period]}. "
        f"Try again in {wait} seconds."
    )
    response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(wait)
    return response


def per_user(setting: str, verb: str, noun: str) -> Callable[[View], View]:
    """Refuse a user's requests beyond `settings.<setting>` (count, period) with a 429."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: AuthedRequest, *args: object, **kwargs: object) -> HttpResponseBase:
            limit, period = getattr(settings, setting)
            wait = hit(setting, request.user.pk, limit, period)
            if wait:
                return too_fast(verb, noun, limit, period, wait)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
