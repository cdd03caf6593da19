"""Identity: the sign-in pages (the password form, with the SSO link when single sign-on is
configured), the lockout page, the SSO endpoints, which exist only while OpenID Connect is
configured, and the people pages where user administrators manage accounts, groups and roles."""

import math
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import Group, User
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from assistant import access, params, people, ratelimit
from assistant.access import AuthedRequest
from assistant.middleware import LANGUAGE_SESSION_KEY
from assistant.models import Preference

View = Callable[[HttpRequest], HttpResponseBase]


@ratelimit.sign_in_attempts
def login(request: HttpRequest) -> HttpResponseBase:
    view = auth_views.LoginView.as_view(extra_context={"sso_enabled": settings.OIDC_ENABLED})
    return view(request)


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The language switcher: kept in a cookie, and on the user's record once signed in, so it
    follows them to every browser. An empty choice goes back to the browser's language."""
    language = request.POST.get("language", "")
    if language not in {"", *(code for code, _name in settings.LANGUAGES)}:
        return HttpResponseBadRequest(gettext("Unknown language."))
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = "/"
    response = redirect(back)
    if language:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite="Lax",
        )
    else:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
    if request.user.is_authenticated:
        Preference.objects.update_or_create(user=request.user, defaults={"language": language})
        request.session[LANGUAGE_SESSION_KEY] = language
    return response


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


# Only user administrators (superusers, or holders of auth.change_user) manage people.
people_admin = access.requires(access.can_manage_people)


@people_admin
@require_GET
def people_index(request: AuthedRequest) -> HttpResponse:
    users = User.objects.prefetch_related("groups").order_by("username")
    role_names = people.role_group_names()
    rows = [
        {
            "user": u,
            "groups": [g.name for g in u.groups.all() if g.name not in role_names],
            "roles": sorted(people.roles_of(u)),
        }
        for u in users
    ]
    return render(request, "assistant/people.html", {"rows": rows, "groups": people.plain_groups()})


@people_admin
@require_POST
def group_create(request: AuthedRequest) -> HttpResponse:
    try:
        group = people.create_group(request.POST.get("name", ""), request.user)
    except people.PeopleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, gettext("Group %(name)s created.") % {"name": group.name})
    return redirect("people:index")


@people_admin
def person(request: AuthedRequest, user_id: int) -> HttpResponse:
    subject = get_object_or_404(User, pk=user_id)
    if request.method == "POST":
        try:
            people.update_person(
                subject,
                Group.objects.filter(pk__in=params.numbers(request.POST.getlist("groups"))),
                request.POST.getlist("roles"),
                request.POST.get("active") == "on",
                request.user,
            )
        except people.PeopleError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, gettext("Saved %(name)s.") % {"name": subject.username})
        return redirect("people:person", user_id=subject.pk)
    context = {
        "subject": subject,
        "groups": people.plain_groups(),
        "member_of": set(subject.groups.values_list("pk", flat=True)),
        "roles": people.roles_of(subject),
        "may_change_roles": people.may_change_roles(request.user, subject),
        "may_change_active": people.may_change_active(request.user, subject),
        "role_choices": [
            ("auditor", gettext("Compliance auditor")),
            ("collection_admin", gettext("Collection admin (may create collections)")),
            ("batch_jobs", gettext("Batch jobs (may run jobs on the collections they read)")),
        ],
    }
    return render(request, "assistant/person.html", context)
