"""docker-compose.yml cannot run here (no Docker engine); these checks keep it consistent with
the code it deploys."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_it_defines_the_whole_services_profile() -> None:
    assert set(SERVICES) >= {"postgres", "redis", "qdrant", "vllm", "web", "worker", "migrate"}


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in SERVICES.items():
        if name != "migrate":
            assert "healthcheck" in service, name


def test_app_services_wait_for_healthy_dependencies() -> None:
    for name in ("web", "worker"):
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        for dependency in ("redis", "qdrant"):
            assert depends[dependency]["condition"] == "service_healthy", (name, dependency)
    assert SERVICES["web"]["depends_on"]["vllm"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_variable_it_sets_is_a_real_setting() -> None:
    settings_source = (ROOT / "assistant" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\("([A-Z_]+)"', settings_source))
    environment = SERVICES["web"]["environment"]
    assert set(environment) <= read, set(environment) - read
    assert {"DATABASE_URL", "CELERY_BROKER_URL", "QDRANT_URL", "LLM_BASE_URL", "LLM_MODEL"} <= set(
        environment
    )
    assert environment["EMBEDDED_WORKER"] == "false"


def test_web_and_workers_share_uploaded_files() -> None:
    assert SERVICES["web"]["volumes"] == SERVICES["worker"]["volumes"]
    assert SERVICES["web"]["environment"]["MEDIA_ROOT"] == "/media"


def test_the_vllm_service_gets_a_gpu() -> None:
    devices = SERVICES["vllm"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_the_worker_runs_the_project_celery_app() -> None:
    command = SERVICES["worker"]["command"]
    assert command[:4] == ["celery", "-A", "assistant", "worker"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "assistant/gunicorn_conf.py" in dockerfile
    assert (ROOT / "assistant" / "gunicorn_conf.py").exists()


def test_web_processes_share_rate_limit_counts_in_redis() -> None:
    environment = SERVICES["web"]["environment"]
    assert environment["CACHE_URL"].startswith("redis://redis:6379/")
    assert environment["CACHE_URL"] != environment["CELERY_BROKER_URL"]
