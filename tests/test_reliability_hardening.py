"""The reliability checklist's web items: the LLM hanging, the audit store failing, abuse caps,
the deploy check, and a header and cookie scan of every route (error pages included)."""

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from assistant.models import Message, QueryRecord
from tests.conftest import login, read_events
from tests.factories import PASSWORD, ingest_now, make_document, make_user
from tests.test_hardening import deploy_check
from tests.test_role_matrix import DATA, MATRIX, ROLES, url_for, world  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "How long do refunds take?"


@pytest.fixture
def library(people):

    document = make_document(people.legal, "refunds.txt", b"Refunds take 14 days.")
    ingest_now(document.pk)
    return document


def ask(client: Client, question: str = QUESTION, **extra: object):
    return client.post(reverse("chat:ask_new"), {"question": question, **extra})


# --- 30: the model hangs ----------------------------------------------------------------------


@pytest.mark.embedded
def test_readyz_answers_within_its_own_timeout_when_the_model_hangs(db, client, fake_llm) -> None:
    """Reliability #30: the model server accepts the probe's generation and never answers
    (its /health would still say 200). /readyz turns red within the probe's own 15-second
    generation timeout, naming the model check only, and a second probe soon after answers at
    once from the remembered failure instead of hanging again."""
    from django.core.cache import cache

    assert client.get("/readyz").status_code == 200  # the other checks warm (the index opened)
    cache.clear()  # the model's result is remembered for a few seconds
    fake_llm.delay = 60  # accepts, then silence
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 15 + 3
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["llm"] == {"ok": False, "error": "unavailable"}
    assert checks["database"]["ok"]
    started = time.monotonic()
    assert client.get("/readyz").status_code == 503
    assert time.monotonic() - started < 2


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_many_hung_answers_end_within_the_timeout_and_others_are_served(
    people, library, fake_llm, settings
) -> None:
    """Reliability #30: ten questions at once to a model that never answers: each ends with a
    graceful error within the read timeout (so a web thread is held for at most that long),
    and meanwhile another user's pages are served at once. Not tested here: gunicorn's own
    thread pool (WEB_THREADS, 128 by default) under this load; bench/load.py measures it."""
    settings.LLM_READ_TIMEOUT = 2.0
    fake_llm.delay = 60
    results: list[tuple[float, list]] = []

    def hung() -> None:
        started = time.monotonic()
        events = read_events(ask(login(people.teammate)))
        results.append((time.monotonic() - started, events))

    threads = [threading.Thread(target=hung) for _ in range(10)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    other = login(people.outsider).get(reverse("chat:index"))
    assert other.status_code == 200 and time.monotonic() - started < 2
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 10
    for seconds, events in results:
        assert events[-1][0] == "error" and "did not answer in time" in events[-1][1]["message"]
        assert seconds < 2.0 * 3 + 5  # the rewrite and the answer each wait at most the timeout
    assert not Message.objects.filter(role="assistant").exists()


@pytest.mark.embedded
@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="runs in the embedded pass")
def test_hung_answers_hold_gunicorns_threads_no_longer_than_the_timeout(
    tmp_path, monkeypatch
) -> None:
    """Reliability #30, served as deployed (gunicorn, assistant/gunicorn_conf.py, 4 threads):
    a model that accepts every stream and never writes a token, and twice as many questions
    as threads. Each question ends with the graceful timeout error, never a 500 or a dropped
    connection, within two rounds of (search + read timeout); a health probe sent while every
    thread is held is answered once the timeouts free them, before the last hung answer ends:
    hung requests cannot exhaust the web threads for good."""
    import http.client

    sys.path.insert(0, str(ROOT / "bench"))
    import load

    threads, timeout = 4, 3.0
    monkeypatch.setenv("LLM_READ_TIMEOUT", str(timeout))
    args = argparse.Namespace(
        sizes=[2 * threads], docs=0, ttft=600, tps=20, tokens=10, ramp=0, threads=threads
    )
    stack = load.start_stack(args, tmp_path)
    try:
        browsers = [load.Browser(stack.port) for _ in range(2 * threads)]
        load.in_parallel([lambda i=i, b=b: b.sign_in(f"load-{i}") for i, b in enumerate(browsers)])
        answers: list = []
        askers = [
            threading.Thread(target=lambda b=b: answers.append(load.ask(b, load.QUESTIONS[0])))
            for b in browsers
        ]
        for asker in askers:
            asker.start()
        time.sleep(1)  # every thread now holds a hung answer, the rest wait in the backlog
        started = time.monotonic()
        probe = http.client.HTTPConnection(load.HOST, stack.port, timeout=60)
        probe.request("GET", "/healthz")
        assert probe.getresponse().status == 200
        waited = time.monotonic() - started
        for asker in askers:
            asker.join(timeout=60)
    finally:
        stack.stop()
    assert len(answers) == 2 * threads
    assert all("did not answer in time" in a.error for a in answers), [a.error for a in answers]
    # Two rounds (the second waits for threads): each the search, then the read timeout.
    longest = max(a.finished - a.started for a in answers)
    assert longest < 2 * (10 + timeout), longest
    # The probe is queued behind the second round (gthread serves connections in order).
    assert waited < longest + 3, (waited, longest)


# --- 31: the audit store fails ------------------------------------------------------------------


def refuse_inserts(table: str) -> tuple[list[str], list[str]]:
    """SQL that makes every INSERT into `table` fail in the database itself, and undoes it."""
    if connection.vendor == "postgresql":
        return (
            [
                "CREATE FUNCTION enclave_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit store unavailable'; END $$",
                f"CREATE TRIGGER enclave_test_refuse BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION enclave_test_refuse()",
            ],
            [
                f"DROP TRIGGER enclave_test_refuse ON {table}",
                "DROP FUNCTION enclave_test_refuse()",
            ],
        )
    return (
        [
            f"CREATE TRIGGER enclave_test_refuse BEFORE INSERT ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END"
        ],
        ["DROP TRIGGER enclave_test_refuse"],
    )


def run(statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


@pytest.mark.embedded
def test_no_answer_is_delivered_when_the_audit_insert_fails(people, library, fake_llm) -> None:
    """Reliability #31: the database refuses the audit record's INSERT (a trigger, as a revoked
    privilege or a full disk would). The question is refused with a generic error that tells
    nothing of the cause, the model is never asked, and no answer is stored."""
    fail, undo = refuse_inserts(QueryRecord._meta.db_table)
    run(fail)
    try:
        events = read_events(ask(login(people.teammate)))
    finally:
        run(undo)
    assert events[-1][0] == "error"
    assert "audit" not in events[-1][1]["message"].lower()
    assert "token" not in [name for name, _ in events]
    assert fake_llm.requests == []
    assert not QueryRecord.objects.exists()
    assert not Message.objects.filter(role="assistant").exists()


@pytest.mark.embedded
def test_no_document_is_served_when_its_audit_event_cannot_be_written(people) -> None:
    """Reliability #31: opening a document writes an audit event first; when the database
    refuses it, the file is not served: a generic 500 page, without the document's text."""
    document = make_document(people.legal, "secret.txt", b"CANARY-OPENED-TEXT")
    from assistant.audit.models import AuditEvent

    client = login(people.teammate)
    client.raise_request_exception = False
    fail, undo = refuse_inserts(AuditEvent._meta.db_table)
    run(fail)
    try:
        response = client.get(reverse("ingestion:document_file", args=[document.pk]))
    finally:
        run(undo)
    assert response.status_code == 500
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"CANARY-OPENED-TEXT" not in body and b"audit store" not in body


# --- 33: abuse caps -----------------------------------------------------------------------------


@pytest.mark.embedded
def test_a_question_over_the_limit_is_refused_with_a_message_never_cut(
    people, library, fake_llm
) -> None:
    """Reliability #33: a 200,000-character question gets a 400 that says why; nothing is
    asked, recorded or stored. One at exactly the limit is answered, and sent whole."""
    from assistant.chat import MAX_QUESTION_CHARS

    client = login(people.teammate)
    response = ask(client, "x" * 200_000)
    assert response.status_code == 400
    assert response.content.decode() == (
        f"The question is too long: at most {MAX_QUESTION_CHARS} characters."
    )
    assert fake_llm.requests == [] and not QueryRecord.objects.exists()
    limit = "Refunds? " + "y" * (MAX_QUESTION_CHARS - 9)
    assert read_events(ask(client, limit))[-1][0] == "done"
    assert QueryRecord.objects.get().question == limit


@pytest.mark.embedded
def test_only_the_servers_generation_fields_reach_the_model(
    people, library, fake_llm, settings
) -> None:
    """Reliability #33: a request carrying n=1e9, max_tokens=1e7, chat_template_kwargs, a JSON
    schema, a model name and sampling fields: the request the model server receives (captured
    at the HTTP edge) holds exactly the fields the server chooses, with its values."""
    read_events(
        ask(
            login(people.teammate),
            n="1000000000",
            max_tokens="10000000",
            chat_template_kwargs='{"enable_thinking": true}',
            response_format='{"type": "json_schema"}',
            guided_json="{}",
            model="other",
            temperature="2",
            logprobs="true",
            stream="false",
        )
    )
    [request] = [r for r in fake_llm.requests if r.get("stream")]
    assert set(request) == {
        "messages", "model", "max_tokens", "temperature", "top_p", "stream", "stream_options",
    }  # fmt: skip
    assert request["top_p"] == settings.LLM_TOP_P and request["stream"] is True
    for field in ("n", "chat_template_kwargs", "response_format", "guided_json", "logprobs"):
        assert field not in request
    assert request["model"] == settings.LLM_MODEL
    assert request["max_tokens"] == settings.LLM_MAX_TOKENS
    assert request["temperature"] == settings.LLM_TEMPERATURE


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_one_users_flood_does_not_slow_another_users_answer(
    people, library, fake_llm, settings
) -> None:
    """Reliability #33: one user sends 100 questions as fast as the server takes them (20 at a
    time): past the per-user rate they get 429s, and meanwhile another user's answer takes no
    longer than twice its time alone, plus five seconds (a 2-core machine running the suite)."""
    settings.RATE_LIMIT_QUESTIONS = (5, 60)

    def timed_answer() -> float:
        started = time.monotonic()
        events = read_events(ask(login(people.outsider), "What is in Sales?"))
        assert events[-1][0] in ("done", "error") and events[0][0] == "conversation"
        return time.monotonic() - started

    alone = timed_answer()
    flood = login(people.teammate)
    codes: list[int] = []

    def send() -> None:
        for _ in range(5):
            response = ask(flood)
            if response.status_code == 200:
                read_events(response)
            codes.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    during = timed_answer()
    for thread in threads:
        thread.join(timeout=120)
    assert codes.count(200) == 5 and codes.count(429) == 95
    assert during < 2 * alone + 5, (alone, during)  # slack for a loaded 2-core CI machine


# --- 34: deploy check ---------------------------------------------------------------------------


def test_the_build_runs_the_deploy_check_and_it_passes(tmp_path) -> None:
    """Reliability #34: `make lint` (run by `make test`) runs `check --deploy --fail-level
    WARNING` with production-like settings, the same command passes here, and every silenced
    check is written with its reason on the line above."""
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:")[1].split("\n\n")[0]
    assert "manage.py check --deploy --fail-level WARNING" in lint
    assert "HTTPS=true" in lint and "DEBUG=false" in lint
    test_target = makefile.split("\ntest:")[1].split("\n")[0]
    assert "lint" in test_target
    result = deploy_check(tmp_path)
    assert result.returncode == 0 and "no issues" in result.stdout, result.stderr
    source = (ROOT / "assistant" / "settings.py").read_text().splitlines()
    for n, line in enumerate(source):
        if line.startswith("SILENCED_SYSTEM_CHECKS"):
            assert source[n - 1].startswith("#") and len(source[n - 1]) > 20, "no reason"


# --- 35: headers and cookies --------------------------------------------------------------------


def production_settings(tmp_path: Path) -> dict:
    """The security settings as settings.py computes them with HTTPS=true (read in a fresh
    process: they are fixed at import)."""
    names = [
        "SESSION_COOKIE_NAME", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SECURE", "CSRF_COOKIE_SAMESITE",
        "LANGUAGE_COOKIE_SECURE", "LANGUAGE_COOKIE_HTTPONLY", "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_SSL_REDIRECT",
    ]  # fmt: skip
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    env = {
        **os.environ,
        "ENCLAVE_VAR_DIR": str(tmp_path),
        "HTTPS": "true",
        "DJANGO_SETTINGS_MODULE": "assistant.settings",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.embedded
def test_under_https_the_cookies_are_secure_httponly_samesite_and_host_prefixed(
    db, settings, tmp_path
) -> None:
    """Reliability #35: with HTTPS=true, a real sign-in over https sets a session cookie named
    __Host-… that is Secure, HttpOnly, SameSite=Lax, path /, with no Domain; the CSRF cookie is
    Secure and SameSite; the session works under that name; every answer carries HSTS of a year
    or more with includeSubDomains; plain http is redirected."""
    production = production_settings(tmp_path)
    for name, value in production.items():
        setattr(settings, name, value)
    name = production["SESSION_COOKIE_NAME"]
    assert name.startswith("__Host-")
    make_user("secure")
    client = Client()
    assert client.get(reverse("login")).status_code == 301  # plain http goes to https
    page = client.get(reverse("login"), secure=True)
    assert page.cookies["csrftoken"]["secure"] and page.cookies["csrftoken"]["samesite"] == "Lax"
    response = client.post(
        reverse("login"), {"username": "secure", "password": PASSWORD}, secure=True
    )
    assert response.status_code == 302
    cookie = response.cookies[name]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert cookie["path"] == "/" and not cookie["domain"]
    signed_in = client.get(reverse("chat:index"), secure=True)
    assert signed_in.status_code == 200
    hsts = signed_in["Strict-Transport-Security"]
    assert int(re.search(r"max-age=(\d+)", hsts)[1]) >= 365 * 24 * 3600
    assert "includeSubDomains" in hsts


def assert_scanned(response, route: str) -> None:
    assert response["X-Request-ID"], route
    assert response["X-Content-Type-Options"] == "nosniff", route
    assert response["Referrer-Policy"] == "same-origin", route
    assert response["Cross-Origin-Opener-Policy"] == "same-origin", route
    csp = response["Content-Security-Policy"]
    if "sandbox" in csp:  # a stored document's download: nothing in it may run or load
        assert response["Content-Disposition"].startswith("attachment"), route
        assert "default-src 'none'" in csp, route
        return
    for directive in (
        "default-src 'self'", "img-src 'self'", "script-src 'self'", "object-src 'none'",
        "base-uri 'none'", "frame-ancestors 'none'",
    ):  # fmt: skip
        assert directive in csp, (route, directive)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, route


def scan_role(route: str) -> str:
    """The role the matrix lets in (so the scan sees the real page), else anonymous."""
    _method, codes = MATRIX[route]
    for role in ("superuser", "collection admin", "employee", "auditor"):
        if 200 <= codes[role] < 400:
            return role
    return "anonymous"


@pytest.mark.embedded
@pytest.mark.parametrize("route", sorted(MATRIX))
def test_every_route_carries_the_security_headers(world, fake_llm, route: str) -> None:  # noqa: F811
    """Reliability #35: one scan over every route of the URL resolver (the role matrix is
    checked to list them all), as anonymous and as a role that gets the page: each answer,
    redirect, refusal or error, has the request id, nosniff, Referrer-Policy, COOP and a CSP
    with default-src, img-src 'self', object-src 'none', base-uri 'none' and
    frame-ancestors 'none' (a stored document's download: sandbox, default-src 'none')."""
    method, _codes = MATRIX[route]
    for role in ("anonymous", scan_role(route)):
        client = Client()
        client.raise_request_exception = False
        if role != "anonymous":
            client.force_login(world["users"][role])
        call = client.get if method == "GET" else client.post
        response = call(url_for(route, world), DATA.get(route, {}))
        if response.streaming:
            b"".join(response.streaming_content)
        assert_scanned(response, f"{route} as {role}")


def test_the_scan_covers_every_route_and_role() -> None:
    """Reliability #35: the scan's routes are the resolver's routes (tests/test_role_matrix.py
    fails when a route is added without its row)."""
    from tests.test_role_matrix import route_names

    assert route_names() == set(MATRIX) and "superuser" in ROLES


@pytest.mark.embedded
@pytest.mark.urls("tests.urls")
def test_a_crash_shows_a_generic_page_with_the_request_id_that_is_logged(client, caplog) -> None:
    """Reliability #35: a forced 500 is our generic page (no traceback, no exception text),
    showing the request id; the same id is in the response header and on the logged error,
    so the administrator finds the traceback from what the user quotes."""
    client.raise_request_exception = False
    response = client.get("/crash/", HTTP_X_REQUEST_ID="support-case-4242")
    assert response.status_code == 500
    page = response.content.decode()
    assert "support-case-4242" in page and response["X-Request-ID"] == "support-case-4242"
    assert "Traceback" not in page and "a bug" not in page and "RuntimeError" not in page
    logged = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert logged and all(getattr(r, "request_id", None) == "support-case-4242" for r in logged)
    assert_scanned(response, "500")


# --- 36, 37: the audit trail --------------------------------------------------------------------


@pytest.mark.embedded
def test_every_audit_row_of_a_session_carries_the_fields_and_the_export_reproduces_them(
    people, library, fake_llm
) -> None:
    """Reliability #36: after questions, a download and a denied access, each query record has
    its actor, a UTC time, the collections really searched (hers only), the retrieved
    (document, chunk) pairs and the outcome; each event its actor, UTC time, action (the
    outcome: opened or denied) and target. The auditor's JSONL export gives the same values for
    every record, the export itself is an event, and an employee gets 403 on it. (The exact
    sequence of a scripted session is tests/assistant/test_audit.py::
    test_a_scripted_session_leaves_exactly_the_expected_trail.)"""
    from assistant.audit.models import AuditEvent
    from tests.factories import make_auditor

    client = login(people.teammate)
    read_events(ask(client, QUESTION))
    read_events(ask(client, "Refunds of gifts?"))
    assert client.get(reverse("ingestion:document_file", args=[library.pk])).status_code == 200
    secret = make_document(people.sales, "sales.txt", b"Sales only")
    assert client.get(reverse("ingestion:document_file", args=[secret.pk])).status_code == 404

    records = list(QueryRecord.objects.order_by("seq"))
    assert len(records) == 2
    for record in records:
        assert record.username == "teammate" and record.user_ref == people.teammate.pk
        assert record.created_at.tzinfo is not None and record.created_at.utcoffset().seconds == 0
        assert [c["id"] for c in record.scope] == [people.legal.pk]
        pairs = [(r["document_id"], r["chunk_no"]) for r in record.retrieved]
        assert pairs and all(doc == library.pk and chunk >= 0 for doc, chunk in pairs)
        assert record.outcome == QueryRecord.Outcome.ANSWERED
    events = AuditEvent.objects.filter(actor_username="teammate").order_by("seq")
    assert [e.action for e in events][-2:] == ["document_opened", "access_denied"]
    for event in events:
        assert event.created_at.tzinfo is not None and event.created_at.utcoffset().seconds == 0
        assert event.actor_ref == people.teammate.pk and event.target_id

    auditor = login(make_auditor())
    export = auditor.get(reverse("audit:export", args=["jsonl"]), {"user": "teammate"})
    rows = [json.loads(line) for line in b"".join(export.streaming_content).splitlines()]
    exported = {row["question"]: row for row in rows}
    for record in records:
        row = exported[record.question]
        assert row["username"] == "teammate" and row["outcome"] == "answered"
        assert row["created_at"].endswith(("Z", "+00:00"))
        assert [(r["document_id"], r["chunk_no"]) for r in row["retrieved"]] == [
            (r["document_id"], r["chunk_no"]) for r in record.retrieved
        ]
    assert AuditEvent.objects.filter(action="audit_exported", actor_username="auditor").exists()
    assert login(people.teammate).get(reverse("audit:export", args=["jsonl"])).status_code == 403


@pytest.mark.embedded
def test_the_app_cannot_empty_the_audit_tables_with_one_statement(db) -> None:
    """Reliability #37: DELETE without WHERE on either audit table (the app's database role,
    no session tricks) is refused by the database and removes nothing."""
    from django.db import DatabaseError, transaction

    from assistant import audit
    from assistant.audit.models import AuditEvent

    audit.record(AuditEvent.Action.LOGIN_FAILED, None, detail={"username": "x"})
    QueryRecord.objects.create(username="alice", question="Q?")
    for table in ("assistant_auditevent", "assistant_queryrecord"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            run([f"DELETE FROM {table}"])  # noqa: S608 (constants only)
    assert AuditEvent.objects.count() == 1 and QueryRecord.objects.count() == 1


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="TRUNCATE is PostgreSQL's: SQLite has none (its DELETE goes through the row "
    "triggers, tested above); the services profile of `make test` runs this",
)
def test_truncating_the_audit_tables_is_refused(db) -> None:
    """Reliability #37: TRUNCATE fires no row trigger; the statement trigger of migration
    0016_audit_truncate_trigger refuses it on each audit table, as the app's database role."""
    from django.db import DatabaseError, transaction

    from assistant import audit
    from assistant.audit.models import AuditEvent

    audit.record(AuditEvent.Action.LOGIN_FAILED, None, detail={"username": "x"})
    QueryRecord.objects.create(username="alice", question="Q?")
    for table in ("assistant_auditevent", "assistant_queryrecord"):
        with pytest.raises(DatabaseError, match="TRUNCATE on"), transaction.atomic():
            run([f"TRUNCATE {table} CASCADE"])
    assert AuditEvent.objects.count() == 1 and QueryRecord.objects.count() == 1
