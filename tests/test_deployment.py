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
    url = re.compile(r"redis://:\$\{REDIS_PASSWORD:\?[^}]*\}@redis:6379/\d+")
    assert url.fullmatch(environment["CACHE_URL"])
    assert environment["CACHE_URL"] != environment["CELERY_BROKER_URL"]


def test_every_service_has_cpu_and_memory_limits() -> None:
    for name, service in SERVICES.items():
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0, name
        assert re.fullmatch(r"\d+[MG]", limits["memory"]), name


def test_only_the_web_publishes_a_port() -> None:
    """Reliability #8."""
    # Postgres, Redis, Qdrant and vLLM are reached on the compose network only.
    assert [name for name, service in SERVICES.items() if "ports" in service] == ["web"]


def test_no_secret_has_a_default() -> None:
    """A secret comes from the environment, required (`${VAR:?}`) or, when optional, empty.

    Reliability #8."""
    text = (ROOT / "docker-compose.yml").read_text()
    secret = re.compile(r"KEY|PASSWORD|TOKEN|SECRET")
    for name, rest in re.findall(r"\$\{(\w+)([^}]*)\}", text):
        if secret.search(name):
            assert rest.startswith(":?") or rest == ":-", (name, rest)
    for service in SERVICES.values():
        environment = service.get("environment", {})
        for variable, value in environment.items():
            if secret.search(variable):
                assert str(value).startswith("${"), variable
            # Credentials inside a URL are interpolated too.
            for credentials in re.findall(r"://([^/]*)@", str(value)):
                assert "${" in credentials, variable
    assert "${METRICS_TOKEN:?" in text


def test_the_app_services_log_json_and_read_every_variable_they_are_given() -> None:
    settings_source = (ROOT / "assistant" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\("([A-Z_]+)"', settings_source))
    for name in ("web", "worker", "migrate"):
        environment = SERVICES[name]["environment"]
        assert set(environment) <= read, (name, set(environment) - read)
        assert environment["LOG_FORMAT"] == "json"
        assert "METRICS_TOKEN" in environment


def test_backups_go_to_their_own_volume() -> None:
    for name in ("web", "worker"):
        assert "backups:/backups" in SERVICES[name]["volumes"]
    assert "backups" in COMPOSE["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "/backups" in dockerfile  # made in the image, so the app user can write the volume
