"""Settings validation: bad values fail at start with the variable named."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from braze_bridge.cli import app
from braze_bridge.config import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: none of the caller's BRAZE_BRIDGE_* variables (CI sets some)."""
    for name in list(os.environ):
        if name.startswith("BRAZE_BRIDGE_"):
            monkeypatch.delenv(name)


def test_defaults_match_the_contract() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url is None
    assert settings.embedded
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.max_body_bytes == 1_048_576
    assert settings.retry_horizon_seconds == 86_400
    assert settings.retention_days == 30
    assert settings.allow_any_braze_url is False


@pytest.mark.parametrize(
    "url", ["sqlite:///x.db", "mysql://root@localhost/test", "localhost:5432/test"]
)
def test_a_non_postgres_database_url_is_refused_with_a_clear_message(url: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Settings(database_url=url)
    message = str(excinfo.value)
    assert "database_url" in message
    assert "PostgreSQL" in message


def test_env_vars_use_the_braze_bridge_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAZE_BRIDGE_PORT", "9123")
    monkeypatch.setenv("BRAZE_BRIDGE_ALLOW_ANY_BRAZE_URL", "1")
    monkeypatch.setenv("BRAZE_BRIDGE_DATABASE_URL", "postgresql://u:p@db:5432/bb")
    settings = Settings()
    assert settings.port == 9123
    assert settings.allow_any_braze_url is True
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql://u:p@db:5432/bb"


def test_cli_names_the_bad_variable_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAZE_BRIDGE_DATABASE_URL", "sqlite:///x.db")
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 2
    assert "BRAZE_BRIDGE_DATABASE_URL" in result.output
    assert "PostgreSQL" in result.output


def test_external_database_without_a_secret_key_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRAZE_BRIDGE_DATABASE_URL", "postgresql://u:p@127.0.0.1:1/none")
    result = CliRunner().invoke(app, ["api"])
    assert result.exit_code == 2
    assert "BRAZE_BRIDGE_SECRET_KEY is required" in result.output
