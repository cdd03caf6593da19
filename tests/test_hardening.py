"""Web hardening: Django's deploy check, security headers on every response (error pages too),
private pages never cached, and per-user rate limits on questions and uploads."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from assistant import settings as config
from assistant.models import Conversation, QueryRecord
from ingestion.models import Document
from tests.conftest import login, read_events
from tests.factories import make_document, make_user

ROOT = Path(__file__).resolve().parents[1]


def deploy_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """`manage.py check --deploy` as `make lint` runs it: production-like environment."""
    # The browser tests allow the ORM beside Playwright's event loop in this process only.
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    production = {
        **inherited,
        "ENCLAVE_VAR_DIR": str(tmp_path),
        "HTTPS": "true",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "enclave.example.com",
        **env,
    }
    command = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    return subprocess.run(
        command, cwd=ROOT, env=production, capture_output=True, text=True, timeout=120
    )


def test_production_settings_pass_the_deploy_check(tmp_path) -> None:
    """Reliability #34: `manage.py check --deploy --fail-level WARNING` passes with production
    settings, as `make lint` runs it."""
    result = deploy_check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_check_fails_without_https(tmp_path) -> None:
    """Reliability #34: the deploy check fails (HSTS, redirect, cookies) when HTTPS is off: the
    check really runs."""
    result = deploy_check(tmp_path, HTTPS="false")
    assert result.returncode != 0
    for check in ("W004", "W008", "W012", "W016"):  # HSTS, redirect, both cookies
        assert f"security.{check}" in result.stderr


def test_the_deploy_check_fails_on_a_weak_secret_key(tmp_path) -> None:
    """Reliability #34: the deploy check fails on a weak SECRET_KEY."""
    result = deploy_check(tmp_path, SECRET_KEY="too-short-to-be-a-secret")
    assert result.returncode != 0
    assert "security.W009" in result.stderr


def assert_hardened(response) -> None:
    csp = response["Content-Security-Policy"]
    for directive in ("default-src 'self'", "img-src 'self'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def assert_plain_error_page(response, status: int, heading: str) -> None:
    assert response.status_code == status
    assert_hardened(response)
    page = response.content.decode()
    assert f"<h1>{heading}</h1>" in page
    assert not re.search(r"<script|<style|\sstyle=", page)


def test_the_embedded_default_serves_plain_http(client) -> None:
    response = client.get("/login/")
    assert response.status_code == 200
    assert_hardened(response)
    assert "Strict-Transport-Security" not in response
    assert not response.cookies["csrftoken"]["secure"]


def test_a_missing_page_is_our_404_with_the_headers(client) -> None:
    """Reliability #35: the 404 page is ours and carries every security header."""
    assert_plain_error_page(client.get("/no-such-page/"), 404, "Not found")


def test_a_forbidden_action_is_our_403_with_the_headers(people) -> None:
    """Reliability #35: the 403 page is ours and carries every security header."""
    response = login(people.teammate).post(reverse("ingestion:collection_create"), {"name": "X"})
    assert_plain_error_page(response, 403, "Not allowed")


def test_an_unknown_host_is_our_400_with_the_headers(client) -> None:
    # Refused inside CommonMiddleware, before the middleware below it could add anything.
    """Reliability #35: the 400 page (unknown host) is ours and carries every security header."""
    response = client.get("/login/", HTTP_HOST="evil.example")
    assert_plain_error_page(response, 400, "Bad request")


def test_a_form_without_its_csrf_token_is_our_403_with_the_headers(db) -> None:
    """Reliability #35: a POST without its CSRF token gets our 403."""
    response = Client(enforce_csrf_checks=True).post("/login/", {"username": "x"})
    assert_plain_error_page(response, 403, "Form expired")


@pytest.mark.urls("tests.urls")
def test_a_crash_is_our_500_with_the_headers(client) -> None:
    """Reliability #35: a forced 500 is our generic page with the headers, no traceback."""
    client.raise_request_exception = False
    assert_plain_error_page(client.get("/crash/"), 500, "Something went wrong")


def test_with_https_on_http_redirects_and_every_secure_response_has_hsts(client, settings) -> None:
    """Reliability #35: with HTTPS on, plain http redirects and every answer has HSTS."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    redirect = client.get("/login/")
    assert redirect.status_code == 301 and redirect.url == "https://testserver/login/"
    assert_hardened(redirect)
    for path, status in (("/login/", 200), ("/no-such-page/", 404)):
        response = client.get(path, secure=True)
        assert response.status_code == status
        assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    # Health probes come from inside the container over plain http.
    assert client.get("/healthz").status_code == 200


def test_a_tls_proxy_header_is_honoured_only_when_configured(client, settings) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    assert client.get("/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 301
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"].startswith("max-age=3600")


def test_the_proxy_header_setting_names_a_header_or_fails(monkeypatch) -> None:
    monkeypatch.setenv("X_PROXY", "X-Forwarded-Proto")
    assert config.env_header("X_PROXY") == ("HTTP_X_FORWARDED_PROTO", "https")
    monkeypatch.setenv("X_PROXY", "X-Forwarded-Proto: https")
    with pytest.raises(ValueError, match="X_PROXY must be a header name"):
        config.env_header("X_PROXY")


def test_no_template_has_inline_script_style_or_handlers() -> None:
    for template in (ROOT / "templates").rglob("*.html"):
        source = template.read_text()
        assert not re.search(r"<script(?![^>]*\ssrc=)", source), template
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=|hx-on", source), template


def test_private_pages_are_never_cached(people) -> None:
    """Reliability #35: chat and document responses are Cache-Control: no-store."""
    document = make_document(people.legal, "notes.txt", b"Private notes.")
    teammate = login(people.teammate)
    for url in (
        reverse("chat:index"),
        reverse("ingestion:collection", args=[people.legal.pk]),
        reverse("ingestion:document_file", args=[document.pk]),
    ):
        response = teammate.get(url)
        assert response.status_code == 200, url
        assert response["Cache-Control"] == "no-store", url


@pytest.mark.embedded
def test_a_question_over_the_limit_gets_a_429_and_is_neither_answered_nor_recorded(
    people,
    fake_llm,
    settings,
) -> None:
    """Reliability #33: past the per-user question rate a 429 with Retry-After and a message;
    another user is still answered."""
    settings.RATE_LIMIT_QUESTIONS = (2, 3600)
    teammate = login(people.teammate)
    read_events(teammate.post(reverse("chat:ask_new"), {"question": "One?"}))
    conversation = Conversation.objects.get()
    read_events(teammate.post(reverse("chat:ask", args=[conversation.pk]), {"question": "Two?"}))

    for url in (reverse("chat:ask_new"), reverse("chat:ask", args=[conversation.pk])):
        refused = teammate.post(url, {"question": "Three?"})
        assert refused.status_code == 429
        wait = int(refused["Retry-After"])
        assert 0 < wait <= 3600
        assert refused["Content-Type"] == "text/plain; charset=utf-8"
        assert refused.content.decode() == (
            f"You are asking too fast: 2 questions per hour. Try again in {wait} seconds."
        )
        assert_hardened(refused)
    assert QueryRecord.objects.count() == 2
    assert Conversation.objects.count() == 1
    assert not conversation.messages.filter(content="Three?").exists()

    events = read_events(login(people.outsider).post(reverse("chat:ask_new"), {"question": "?"}))
    assert events[0][0] == "conversation"
    assert QueryRecord.objects.filter(username=people.outsider.username).count() == 1


@pytest.mark.embedded
def test_an_upload_over_the_limit_gets_a_429_and_stores_nothing(people, settings) -> None:
    """Reliability #33: past the per-user upload rate a 429 and nothing stored; another manager can
    still upload."""
    settings.RATE_LIMIT_UPLOADS = (2, 3600)
    url = reverse("ingestion:upload", args=[people.legal.pk])
    owner = login(people.owner)
    for n in range(2):
        response = owner.post(url, {"files": [SimpleUploadedFile(f"{n}.txt", b"Text.")]})
        assert response.status_code == 302
    refused = owner.post(url, {"files": [SimpleUploadedFile("2.txt", b"Text.")]})
    assert refused.status_code == 429
    wait = int(refused["Retry-After"])
    assert refused.content.decode() == (
        f"You are uploading too fast: 2 uploads per hour. Try again in {wait} seconds."
    )
    assert Document.objects.count() == 2

    colleague = make_user("colleague")
    people.legal.managers.add(colleague)
    response = login(colleague).post(url, {"files": [SimpleUploadedFile("c.txt", b"Text.")]})
    assert response.status_code == 302
    assert Document.objects.count() == 3


def test_rate_limits_are_read_from_the_environment_or_fail(monkeypatch) -> None:
    monkeypatch.setenv("X_RATE", " 20 / minute ")
    assert config.env_rate("X_RATE", "1/day") == (20, 60)
    monkeypatch.delenv("X_RATE")
    assert config.env_rate("X_RATE", "30/hour") == (30, 3600)
    for bad in ("20", "20/fortnight", "0/minute", "-1/hour", "many/minute"):
        monkeypatch.setenv("X_RATE", bad)
        with pytest.raises(ValueError, match="X_RATE must look like 20/minute"):
            config.env_rate("X_RATE", "1/day")


def test_the_cache_is_redis_when_a_url_names_it_or_fails(monkeypatch) -> None:
    monkeypatch.delenv("X_CACHE", raising=False)
    assert config.env_cache("X_CACHE")["BACKEND"].endswith("LocMemCache")
    monkeypatch.setenv("X_CACHE", "redis://redis:6379/1")
    assert config.env_cache("X_CACHE") == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://redis:6379/1",
    }
    monkeypatch.setenv("X_CACHE", "memcached://secret@cache:11211")
    with pytest.raises(ValueError, match="X_CACHE must be a redis:// URL") as error:
        config.env_cache("X_CACHE")
    assert "secret" not in str(error.value)
