import pytest

from assistant import settings as config


def test_typed_helpers_fail_loudly_on_bad_values(monkeypatch) -> None:
    monkeypatch.setenv("X_INT", "ten")
    with pytest.raises(ValueError, match="X_INT must be an integer"):
        config.env_int("X_INT", 1)
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(ValueError, match="X_BOOL must be true or false"):
        config.env_bool("X_BOOL", False)
    monkeypatch.setenv("X_FLOAT", "fast")
    with pytest.raises(ValueError, match="X_FLOAT must be a number"):
        config.env_float("X_FLOAT", 1.0)


def test_typed_helpers_read_values_and_defaults(monkeypatch) -> None:
    monkeypatch.setenv("X_INT", "7")
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    monkeypatch.delenv("X_MISSING", raising=False)
    assert config.env_int("X_INT", 1) == 7
    assert config.env_bool("X_BOOL", False) is True
    assert config.env_list("X_LIST", "") == ["a", "b", "c"]
    assert config.env_int("X_MISSING", 3) == 3


def test_every_response_carries_a_strict_csp(client) -> None:
    """Reliability #10, #11, #35: the CSP allows no inline script nor outside image."""
    response = client.get("/login/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response["X-Content-Type-Options"] == "nosniff"


def test_pages_load_nothing_from_outside(client) -> None:
    page = client.get("/login/").content.decode()
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
