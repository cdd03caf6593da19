from django.urls import reverse

from tests.conftest import free_port


def test_healthz_answers_without_touching_dependencies(client) -> None:  # noqa: ANN001
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_every_dependency(db, client, fake_llm) -> None:  # noqa: ANN001
    response = client.get(reverse("readyz"))
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ready"
    assert set(response.json()["checks"]) == {"database", "broker", "vector_store", "llm"}
    # The LLM check is a real one-token generation, not a port probe.
    assert fake_llm.requests[0]["max_tokens"] == 1


def test_readyz_reports_a_dead_llm(db, client, settings) -> None:  # noqa: ANN001
    settings.LLM_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"
    response = client.get(reverse("readyz"))
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["llm"]["ok"] is False and "Unavailable" in checks["llm"]["error"]
    assert checks["database"]["ok"] is True


def test_readyz_reports_a_dead_broker(db, client, fake_llm, settings) -> None:  # noqa: ANN001
    from assistant.celery import app

    dead = f"redis://127.0.0.1:{free_port()}/0"
    original = app.conf.broker_url, app.conf.broker_write_url
    app.conf.broker_url = app.conf.broker_write_url = dead
    try:
        response = client.get(reverse("readyz"))
    finally:
        app.conf.broker_url, app.conf.broker_write_url = original
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False
