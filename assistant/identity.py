"""Sign-in pages: the password form (with the SSO link when single sign-on is configured), the
lockout page, and the SSO endpoints, which exist only while OpenID Connect is configured."""

import math
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from assistant import ratelimit

View = Callable[[HttpRequest], HttpResponseBase]


@ratelimit.sign_in_attempts
def login(request: HttpRequest) -> HttpResponseBase:
    view = auth_views.LoginView.as_view(extra_context={"sso_enabled": settings.OIDC_ENABLED})
    return view(request)


def locked_out(
    request: HttpRequest, response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """What django-axes answers once a username is locked from an address. Every attempt during
    the lockout restarts the cool-off, so the wait is always the full cool-off."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    context = {"minutes": math.ceil(seconds / 60)}
    page = render(request, "registration/locked.html", context, status=429)
    page["Retry-After"] = str(seconds)
    return page


def sso_only(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponseBase:
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        return view(request)

    return wrapper


sso_start = sso_only(OIDCAuthenticationRequestView.as_view())
sso_callback = sso_only(OIDCAuthenticationCallbackView.as_view())
