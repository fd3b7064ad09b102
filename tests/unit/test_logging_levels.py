"""Which log lines are written (the level configure_logging sets decides), and which keys are
redacted."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from braze_bridge.logging import configure_logging


@pytest.fixture(autouse=True)
def unconfigured_afterwards() -> Iterator[None]:
    yield
    structlog.reset_defaults()  # loggers created later are not cached at this test's level


@pytest.mark.parametrize(
    ("level", "written"),
    [("debug", ["debug", "info", "warning"]), ("warning", ["warning"])],
)
def test_lines_below_the_configured_level_are_dropped(level: str, written: list[str]) -> None:
    configure_logging(level)
    log = structlog.get_logger(f"test.levels.{level}")

    with structlog.testing.capture_logs() as captured:
        log.debug("a.debug")
        log.info("a.info")
        log.warning("a.warning")

    assert [entry["log_level"] for entry in captured] == written


def test_a_logger_cached_before_a_capture_is_still_captured() -> None:
    configure_logging("info")
    log = structlog.get_logger("test.levels.cached")
    log.info("first.use")  # caches this logger with the configured processors

    with structlog.testing.capture_logs() as captured:
        log.info("second.use", count=2)

    assert captured == [{"event": "second.use", "log_level": "info", "count": 2}]


def test_keys_named_like_secrets_are_redacted_in_written_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info")
    log = structlog.get_logger("test.levels.redact")

    log.info(
        "admin.thing",
        api_key="k-123",
        webhook_secret="s-456",
        Authorization="Bearer b-789",
        x_extole_signature="v1-0f0f",
        count=2,
    )

    line = capsys.readouterr().err
    for secret in ("k-123", "s-456", "b-789", "v1-0f0f"):
        assert secret not in line
    assert '"count": 2' in line
    assert line.count('"[redacted]"') == 4


def _database_error() -> Exception:
    """An error whose text quotes the SQL and a bound parameter, as SQLAlchemy's do."""
    try:
        try:
            raise ValueError("invalid input syntax for type json")
        except ValueError as inner:
            raise RuntimeError(
                "[SQL: UPDATE users SET email = $1] [parameters: ('ann@example.com',)]"
            ) from inner
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize("how", ["exception", "exc_info", "stdlib"])
def test_a_logged_exception_is_described_without_its_message_or_traceback(
    capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """Worker, replay-runner and server errors may carry SQL and personal data in their text:
    every line says only the type, the causes' types and where it was raised."""
    configure_logging("info")
    log = structlog.get_logger("test.levels.exceptions")
    error = _database_error()
    if how == "exception":
        try:
            raise error
        except RuntimeError:
            log.exception("worker.round_failed")
    elif how == "exc_info":
        log.warning("worker.lease_renewal_failed", exc_info=error)
    else:
        logging.getLogger("uvicorn.error").error("Exception in ASGI application", exc_info=error)

    written = capsys.readouterr().err
    line = json.loads(written.strip().splitlines()[-1])
    assert line["error"] == "RuntimeError"
    assert line["causes"] == ["ValueError"]
    assert line["where"]
    assert all(":" in place for place in line["where"])
    assert "ann@example.com" not in written
    assert "SQL" not in written
    assert "Traceback" not in written
