import logging
import threading

from django.core.cache import cache
from django.urls import reverse

from tests.conftest import free_port


def test_healthz_answers_without_touching_dependencies(client) -> None:
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_every_dependency(db, client, fake_llm) -> None:
    response = client.get(reverse("readyz"))
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ready"
    assert set(response.json()["checks"]) == {"database", "broker", "vector_store", "llm"}
    # The LLM check is a real one-token generation, not a port probe.
    assert fake_llm.requests[0]["max_tokens"] == 1


def test_readyz_reports_a_dead_llm(db, client, settings) -> None:
    """Reliability #30: the readiness probe turns red when the model server is stopped."""
    settings.LLM_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"
    response = client.get(reverse("readyz"))
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["llm"] == {"ok": False, "error": "unavailable"}
    assert checks["database"] == {"ok": True}


def test_readyz_reports_a_dead_broker(db, client, fake_llm, settings) -> None:
    from assistant.celery import app

    dead = f"redis://127.0.0.1:{free_port()}/0"
    original = app.conf.broker_url, app.conf.broker_write_url, app.conf.broker_transport
    # A Redis broker: the embedded profile's folder transport (broker_transport) goes too.
    app.conf.broker_url = app.conf.broker_write_url = dead
    app.conf.broker_transport = None
    try:
        response = client.get(reverse("readyz"))
    finally:
        app.conf.broker_url, app.conf.broker_write_url, app.conf.broker_transport = original
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "unavailable"}
    assert dead.split(":")[2] not in response.content.decode()  # no address, no exception text


def test_readyz_names_the_failing_check_and_logs_the_error(db, client, settings, caplog) -> None:
    port = free_port()
    settings.LLM_BASE_URL = f"http://127.0.0.1:{port}/v1"
    with caplog.at_level(logging.WARNING, logger="assistant.readiness"):
        response = client.get(reverse("readyz"))
    body = response.content.decode()
    assert response.status_code == 503 and response.json()["checks"]["llm"]["ok"] is False
    assert "Unavailable" not in body and "Error" not in body and str(port) not in body
    assert "llm check failed" in caplog.text and "LLMUnavailable" in caplog.text


def test_readyz_generates_at_most_once_every_few_seconds(db, client, fake_llm) -> None:
    for _ in range(5):
        assert client.get(reverse("readyz")).status_code == 200
    assert len(fake_llm.requests) == 1
    cache.clear()  # as the few seconds running out does
    assert client.get(reverse("readyz")).status_code == 200
    assert len(fake_llm.requests) == 2


def test_a_failed_generation_is_remembered_as_briefly(db, client, fake_llm) -> None:
    fake_llm.completion = None  # HTTP 500 to the ping
    assert client.get(reverse("readyz")).status_code == 503
    requests = len(fake_llm.requests)
    assert client.get(reverse("readyz")).status_code == 503
    assert len(fake_llm.requests) == requests  # a failing model is not hammered either
    fake_llm.completion = "OK"
    cache.clear()
    assert client.get(reverse("readyz")).status_code == 200
    assert len(fake_llm.requests) == requests + 1


def test_concurrent_probes_share_one_generation(fake_llm) -> None:
    """Reliability #30: concurrent readiness probes share one generation, so a hung model cannot
    pile up probe requests."""
    from assistant import readiness

    fake_llm.delay = 0.3  # under the fixture's 1 s read timeout: a timeout would be retried
    results: list[tuple[str, dict]] = []
    probes = [
        threading.Thread(target=lambda: results.append(readiness.check("llm", readiness.llm)))
        for _ in range(4)
    ]
    for probe in probes:
        probe.start()
    for probe in probes:
        probe.join()
    assert results == [("llm", {"ok": True})] * 4
    assert len(fake_llm.requests) == 1
