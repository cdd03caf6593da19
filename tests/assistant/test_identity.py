"""Who may sign in, and for how long: argon2 passwords, lockout after repeated failures, idle
and absolute session timeouts, server-side logout, and single sign-on against a real (local)
OpenID Connect provider."""

import http.client
import importlib.util
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from assistant.models import AuditEvent, SsoIdentity
from tests.conftest import login
from tests.factories import PASSWORD, make_group, make_user
from tests.oidc_provider import CLIENT_ID, OTHER_KEY, Provider

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def sign_in(client: Client, username: str, password: str = PASSWORD, **extra: str):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def signed_in_as(client: Client) -> str | None:
    response = client.get(reverse("chat:index"))
    if response.status_code != 200:
        return None
    return re.search(r'<span class="who">(.*?)</span>', response.content.decode()).group(1)


def age_session(client: Client, **seconds_ago: int) -> None:
    """Move the session's clock back: it was signed in / last seen that many seconds ago."""
    session = client.session
    for key, seconds in seconds_ago.items():
        session[key] = int(time.time()) - seconds
    session.save()


# --- passwords and lockout -------------------------------------------------------------------


def test_signing_in_upgrades_an_older_password_hash_to_argon2(db) -> None:
    """Reliability #35: stored password hashes are argon2."""
    user = make_user("olga")
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save()
    response = sign_in(Client(), "olga")
    assert response.status_code == 302 and response["Location"] == reverse("chat:index")
    user.refresh_from_db()
    assert user.password.startswith("argon2$")


def test_it_locks_a_username_after_repeated_failures_with_a_readable_page(settings, db) -> None:
    """Reliability #35: repeated bad passwords lock the username out."""
    make_user("mallory-target")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = sign_in(client, "mallory-target", "wrong")
        assert response.status_code == 200
        assert "didn't match" in response.content.decode()
    locked = sign_in(client, "mallory-target", "wrong")
    assert locked.status_code == 429
    assert locked["Retry-After"] == "900"
    page = locked.content.decode()
    assert "Account locked" in page and "try again in 15 minutes" in page
    assert "default-src 'self'" in locked["Content-Security-Policy"]
    # Even the right password is refused while locked.
    assert sign_in(client, "mallory-target").status_code == 429
    assert signed_in_as(client) is None


def test_a_lockout_holds_only_that_username_from_that_address(settings, db) -> None:
    make_user("victim")
    make_user("neighbour")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(), "victim", "wrong", REMOTE_ADDR="10.0.0.66")
    assert sign_in(Client(), "victim", REMOTE_ADDR="10.0.0.66").status_code == 429
    assert sign_in(Client(), "neighbour", REMOTE_ADDR="10.0.0.66").status_code == 302
    assert sign_in(Client(), "victim", REMOTE_ADDR="10.0.0.7").status_code == 302


def test_the_lockout_ends_after_the_cool_off(settings, db) -> None:
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    make_user("patient")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(), "patient", "wrong")
    assert sign_in(Client(), "patient").status_code == 429
    time.sleep(2.2)
    client = Client()
    assert sign_in(client, "patient").status_code == 302
    assert signed_in_as(client) == "patient"


# --- sessions --------------------------------------------------------------------------------


def test_logout_ends_the_session_on_the_server(db) -> None:
    """Reliability #35: after logout, replaying the session cookie is not signed in."""
    make_user("leaver")
    client = Client()
    sign_in(client, "leaver")
    old_cookie = client.cookies["sessionid"].value
    assert signed_in_as(client) == "leaver"
    assert client.post(reverse("logout")).status_code == 302
    replay = Client()
    replay.cookies["sessionid"] = old_cookie
    assert signed_in_as(replay) is None


def test_an_idle_session_is_signed_out_with_a_message(settings, people) -> None:
    """Reliability #35: the idle timeout is enforced."""
    client = login(people.teammate)
    assert signed_in_as(client) == "teammate"
    age_session(client, seen_at=settings.SESSION_IDLE_SECONDS + 5)
    response = client.get(reverse("chat:index"), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("login"))
    assert "Your session has ended; please sign in again." in response.content.decode()
    assert signed_in_as(client) is None


def test_activity_keeps_a_session_alive_but_not_past_the_absolute_limit(settings, people) -> None:
    """Reliability #35: the absolute session timeout is enforced."""
    client = login(people.teammate)
    assert signed_in_as(client) == "teammate"
    age_session(client, seen_at=settings.SESSION_IDLE_SECONDS - 60)
    assert signed_in_as(client) == "teammate"
    assert client.session["seen_at"] >= time.time() - 5  # the request counted as activity
    age_session(client, signed_in_at=settings.SESSION_COOKIE_AGE + 5)
    assert signed_in_as(client) is None


def test_an_ended_session_answers_htmx_and_streaming_requests_with_401(settings, people) -> None:
    for headers in ({"HX-Request": "true"}, {"Accept": "text/event-stream"}):
        client = login(people.teammate)
        assert signed_in_as(client) == "teammate"
        age_session(client, seen_at=settings.SESSION_IDLE_SECONDS + 5)
        response = client.post(reverse("chat:ask_new"), {"question": "Hi?"}, headers=headers)
        assert response.status_code == 401
        assert response["HX-Redirect"] == reverse("login")
        assert response.content.decode() == "Your session has ended; please sign in again."
        assert signed_in_as(client) is None


# --- single sign-on --------------------------------------------------------------------------


def settings_from_env(monkeypatch, **environment: str):
    """What assistant/settings.py makes of this environment."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.find_spec("assistant.settings")
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    return fresh


def configure_sso(settings, monkeypatch, provider: Provider, **environment: str) -> None:
    """Configure SSO as an operator does, through the environment, and apply it to the site."""
    fresh = settings_from_env(monkeypatch, **provider.environment(), **environment)
    for name in vars(fresh):
        if name.startswith("OIDC_") or name == "AUTHENTICATION_BACKENDS":
            setattr(settings, name, getattr(fresh, name))


@pytest.fixture
def provider(settings, monkeypatch) -> Iterator[Provider]:
    provider = Provider()
    configure_sso(settings, monkeypatch, provider)
    yield provider
    provider.close()


def sign_in_with_sso(client: Client, provider: Provider, **claims: object):
    """The browser's part of the flow: Enclave → provider's /authorize → Enclave's callback."""
    provider.claims = claims
    start = client.get(reverse("sso:start"))
    assert start.status_code == 302, start
    authorize = urlsplit(start["Location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == provider.url
    connection = http.client.HTTPConnection(authorize.netloc, timeout=10)
    connection.request("GET", f"{authorize.path}?{authorize.query}")
    back = urlsplit(connection.getresponse().getheader("Location"))
    connection.close()
    assert back.netloc == "testserver" and back.path == reverse("sso:callback")
    return client.get(f"{back.path}?{back.query}")


def scope_of(client: Client) -> str:
    page = client.get(reverse("chat:index")).content.decode()
    return re.search(r"id=\"scope-names\">\s*(.*?)\s*</p>", page, re.S).group(1)


def test_without_oidc_settings_there_is_no_single_sign_on(client) -> None:
    assert "Sign in with SSO" not in client.get(reverse("login")).content.decode()
    assert client.get(reverse("sso:start")).status_code == 404
    assert client.get(reverse("sso:callback"), {"code": "x", "state": "y"}).status_code == 404


def test_sso_settings_fail_loudly_when_incomplete(monkeypatch) -> None:
    monkeypatch.delenv("OIDC_OP_TOKEN_ENDPOINT", raising=False)
    with pytest.raises(
        ValueError, match="OIDC_OP_TOKEN_ENDPOINT must be set when OIDC_RP_CLIENT_ID"
    ):
        settings_from_env(
            monkeypatch,
            OIDC_RP_CLIENT_ID=CLIENT_ID,
            OIDC_OP_AUTHORIZATION_ENDPOINT="https://id.example.org/authorize",
        )


def test_sso_signs_a_user_in_with_the_claimed_groups_that_exist(people, provider) -> None:
    client = Client()
    assert "Sign in with SSO" in client.get(reverse("login")).content.decode()
    claims = {"email": "carol@example.org", "groups": ["Legal", "Not-in-Enclave"]}
    response = sign_in_with_sso(client, provider, preferred_username="carol", **claims)
    assert response.status_code == 302 and response["Location"] == reverse("chat:index")
    assert signed_in_as(client) == "carol"
    carol = User.objects.get(username="carol")
    assert carol.email == "carol@example.org" and not carol.has_usable_password()
    assert [g.name for g in carol.groups.all()] == ["Legal"]
    assert not Group.objects.filter(name="Not-in-Enclave").exists()
    assert scope_of(client) == "Legal"


def test_each_sso_sign_in_replaces_the_group_memberships(people, provider) -> None:
    first = Client()
    sign_in_with_sso(first, provider, preferred_username="carol", groups=["Legal"])
    assert scope_of(first) == "Legal"
    User.objects.get(username="carol").groups.add(make_group("Granted-by-hand"))
    first.post(reverse("logout"))

    second = Client()
    sign_in_with_sso(second, provider, preferred_username="carol", groups=["Sales"])
    assert signed_in_as(second) == "carol"
    assert [g.name for g in User.objects.get(username="carol").groups.all()] == ["Sales"]
    assert scope_of(second) == "Sales"
    assert User.objects.filter(username="carol").count() == 1


def test_sso_creates_missing_groups_only_when_told_to(settings, monkeypatch, provider, db) -> None:
    configure_sso(settings, monkeypatch, provider, OIDC_CREATE_GROUPS="true")
    sign_in_with_sso(Client(), provider, preferred_username="dan", groups=["Night shift"])
    assert [g.name for g in User.objects.get(username="dan").groups.all()] == ["Night shift"]


def test_sso_usernames_fall_back_to_the_email(provider, db) -> None:
    client = Client()
    sign_in_with_sso(client, provider, sub="u-42", email="erin@example.org", groups=[])
    assert signed_in_as(client) == "erin@example.org"


def sso_only(user: User) -> User:
    """An account made by single sign-on before identities were stored: no password."""
    user.set_unusable_password()
    user.save()
    return user


def refusal_of(client: Client, response) -> str:
    """Where a refused SSO sign-in lands: the sign-in page, with the reason."""
    assert response.status_code == 302 and response["Location"] == reverse("login")
    page = client.get(reverse("login")).content.decode()
    return re.search(r'<li class="error">(.*?)</li>', page, re.S).group(1)


def test_a_provider_user_renamed_to_admin_does_not_become_admin(provider, db) -> None:
    make_user("admin", is_superuser=True, is_staff=True)
    client = Client()
    sign_in_with_sso(client, provider, sub="u-7", preferred_username="mallory", groups=[])
    client.post(reverse("logout"))
    # Renamed at the provider: still the same provider account, so still mallory here.
    sign_in_with_sso(client, provider, sub="u-7", preferred_username="admin", groups=[])
    assert signed_in_as(client) == "mallory"
    assert not User.objects.get(username="mallory").is_superuser
    # A provider account never seen before gets no existing account with a password either.
    newcomer = Client()
    response = sign_in_with_sso(newcomer, provider, sub="u-8", preferred_username="admin")
    assert "“admin” already exists" in refusal_of(newcomer, response)
    assert signed_in_as(newcomer) is None
    assert not SsoIdentity.objects.filter(user__username="admin").exists()


def test_sso_keeps_the_account_when_the_username_changes(provider, db) -> None:
    sign_in_with_sso(Client(), provider, sub="u-9", preferred_username="carol", groups=[])
    client = Client()
    sign_in_with_sso(client, provider, sub="u-9", preferred_username="caroline", groups=[])
    assert signed_in_as(client) == "carol"
    assert not User.objects.filter(username="caroline").exists()
    identity = SsoIdentity.objects.get()
    assert identity.user.username == "carol"
    assert (identity.issuer, identity.subject) == (provider.url, "u-9")


def test_sso_takes_the_issuer_from_the_signed_id_token(provider, db) -> None:
    # Claims set here reach userinfo only; the ID token's `iss` stays the provider's.
    sign_in_with_sso(Client(), provider, sub="u-4", preferred_username="dora", iss="https://x.org")
    assert SsoIdentity.objects.get().issuer == provider.url


def test_sso_refuses_an_account_with_a_password_until_an_admin_links_it(people, provider) -> None:
    client = Client()
    response = sign_in_with_sso(client, provider, sub="u-3", preferred_username="teammate")
    assert "Ask an administrator to link it" in refusal_of(client, response)
    assert signed_in_as(client) is None

    out = StringIO()
    call_command("link_sso", "teammate", provider.url, "u-3", stdout=out)
    assert out.getvalue() == f"linked u-3 at {provider.url} to teammate\n"
    event = AuditEvent.objects.get(action="sso_linked")
    assert event.target_label == "teammate" and event.actor_ref is None
    assert event.detail == {"issuer": provider.url, "subject": "u-3", "by": "link_sso"}
    sign_in_with_sso(client, provider, sub="u-3", preferred_username="tm", groups=["Legal"])
    assert signed_in_as(client) == "teammate"


def test_link_sso_refuses_an_unknown_user_or_an_identity_linked_elsewhere(people) -> None:
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("link_sso", "nobody", "https://id.example.org", "u-1")
    call_command("link_sso", "teammate", "https://id.example.org", "u-1", stdout=StringIO())
    with pytest.raises(CommandError, match="already linked to 'teammate'"):
        call_command("link_sso", "outsider", "https://id.example.org", "u-1")
    assert list(SsoIdentity.objects.values_list("user__username", flat=True)) == ["teammate"]


def test_sso_binds_an_sso_only_account_once(provider, db) -> None:
    sso_only(make_user("legacy"))
    sso_only(make_user("root", is_superuser=True))
    client = Client()
    sign_in_with_sso(client, provider, sub="u-1", preferred_username="legacy", groups=[])
    assert signed_in_as(client) == "legacy"
    assert SsoIdentity.objects.get().user.username == "legacy"
    for other in ("legacy", "root"):  # already bound to another; a superuser
        client = Client()
        response = sign_in_with_sso(client, provider, sub="u-2", preferred_username=other)
        assert f"“{other}” already exists" in refusal_of(client, response)
    assert SsoIdentity.objects.count() == 1


def test_sso_refuses_userinfo_about_another_subject(provider, db) -> None:
    provider.userinfo_subject = "u-admin"
    client = Client()
    response = sign_in_with_sso(client, provider, sub="u-5", preferred_username="eve")
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert signed_in_as(client) is None
    assert not User.objects.filter(username="eve").exists()


@pytest.mark.parametrize("forgery", ["signed with another key", "issued to another client"])
def test_sso_refuses_a_forged_id_token(forgery: str, provider, db) -> None:
    if forgery == "signed with another key":
        provider.signing_key = OTHER_KEY
    else:
        provider.audience = "some-other-app"
    client = Client()
    response = sign_in_with_sso(client, provider, preferred_username="mallory", groups=[])
    assert response.status_code == 400
    assert signed_in_as(client) is None
    assert not User.objects.filter(username="mallory").exists()


def test_sso_claims_neither_grant_nor_remove_roles(settings, monkeypatch, provider, db) -> None:
    from assistant import access, people

    configure_sso(settings, monkeypatch, provider, OIDC_CREATE_GROUPS="true")
    auditor = sso_only(make_user("ana"))
    people.set_roles(auditor, ["auditor"], actor=None)
    sign_in_with_sso(Client(), provider, preferred_username="ana", groups=["Night shift"])
    sign_in_with_sso(Client(), provider, preferred_username="mallory", groups=["Auditors"])
    ana = User.objects.get(username="ana")
    assert access.can_audit(ana)  # the role survived a sign-in whose claim lacks it
    assert sorted(g.name for g in ana.groups.all()) == ["Auditors", "Night shift"]
    assert not access.can_audit(User.objects.get(username="mallory"))
    change = AuditEvent.objects.filter(action="membership_changed", target_label="ana").get()
    assert change.actor_ref is None and change.detail["after"] == ["Night shift"]


def test_two_first_sign_ins_of_one_identity_end_on_one_account(db, rf) -> None:
    from assistant.oidc import GroupSyncBackend

    claims = {"iss": "https://idp.example", "sub": "u-9", "preferred_username": "zoe"}
    backend = GroupSyncBackend()
    backend.request = rf.get("/")
    first = backend.create_user(dict(claims))
    # The second tab looked the identity up before the first linked it, and creates it now.
    assert backend.create_user(dict(claims)) == first
    assert SsoIdentity.objects.get().user == first
