"""Which log lines are written (the level configure_logging sets decides), and which keys are
redacted."""

from __future__ import annotations

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
