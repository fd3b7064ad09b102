"""A `BRAZE_BRIDGE_*` variable no setting reads (a typo) is named at start, with the likely
intended name (docs/contract.md, "2. Configuration")."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from braze_bridge.cli import load_settings
from braze_bridge.config import unknown_variables


def test_a_typo_is_reported_with_the_closest_known_name() -> None:
    found = unknown_variables(
        {"BRAZE_BRIDGE_PROT": "8080", "BRAZE_BRIDGE_PORT": "8000", "HOME": "/root"}
    )

    assert found == [("BRAZE_BRIDGE_PROT", "BRAZE_BRIDGE_PORT")]


def test_a_name_like_nothing_known_has_no_suggestion() -> None:
    assert unknown_variables({"BRAZE_BRIDGE_ZZZZZZZZZZZZ": "1"}) == [
        ("BRAZE_BRIDGE_ZZZZZZZZZZZZ", None)
    ]


def test_every_setting_the_test_database_and_the_client_variables_are_known() -> None:
    environ = {
        "BRAZE_BRIDGE_DATABASE_URL": "postgresql://x@y/z",
        "BRAZE_BRIDGE_URL": "http://127.0.0.1:8000",  # braze-bridge replay's
        "BRAZE_BRIDGE_TOKEN": "bbo_x",
        "BRAZE_BRIDGE_METRICS_TOKEN": "t",
        "braze_bridge_log_level": "info",  # pydantic-settings ignores the case
        "BRAZE_BRIDGE_TEST_DATABASE_URL": "postgresql://x@y/z",
    }

    assert unknown_variables(environ) == []


def test_start_up_logs_one_warning_per_unknown_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRAZE_BRIDGE_SECRET_KYE", "abc")
    monkeypatch.setenv("BRAZE_BRIDGE_LOG_LEVEL", "info")
    # configure_logging would replace capture_logs' processor.
    monkeypatch.setattr("braze_bridge.cli.configure_logging", lambda level: None)

    with capture_logs() as logs:
        load_settings()

    warnings = [line for line in logs if line["event"] == "config.unknown_variable"]
    assert warnings == [
        {
            "event": "config.unknown_variable",
            "log_level": "warning",
            "variable": "BRAZE_BRIDGE_SECRET_KYE",
            "closest": "BRAZE_BRIDGE_SECRET_KEY",
        }
    ]
    assert "abc" not in str(logs)  # the value may be a secret
