"""`braze-bridge replay` option handling that needs no server."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner, Result

from braze_bridge.cli import app as cli
from braze_bridge.cli.replay import aware


@pytest.fixture
def local_zone_far_from_utc() -> Iterator[None]:
    """The machine's local zone at UTC+9 (the bug: naive times took the local zone)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()


def test_a_time_without_a_zone_is_utc_whatever_the_local_zone(
    local_zone_far_from_utc: None,
) -> None:
    naive = datetime.fromisoformat("2026-11-24T06:30")  # as typer parses `--since`

    assert aware(naive) == "2026-11-24T06:30:00+00:00"


def test_a_time_with_a_zone_keeps_it() -> None:
    paris = timezone(timedelta(hours=1))
    assert aware(datetime(2026, 11, 24, 6, 30, tzinfo=paris)) == "2026-11-24T06:30:00+01:00"
    assert aware(None) is None


def run_replay(*args: str) -> Result:
    """The command as a user types it; the guard answers before any request is made (the URL
    points at a closed port, so a request would fail differently)."""
    env = {"BRAZE_BRIDGE_TOKEN": "bbo_unused", "BRAZE_BRIDGE_URL": "http://127.0.0.1:9"}
    return CliRunner().invoke(cli, ["replay", *args], env=env)


def test_no_event_id_and_no_filter_is_refused_without_touching_anything() -> None:
    result = run_replay()

    assert result.exit_code == 1
    assert "nothing says what to replay" in result.output
    assert "--all" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--all", "--status", "dead"], "--all replays every event"),
        (["0190a3a0-0000-7000-8000-000000000000", "--all"], "not several"),
        (["0190a3a0-0000-7000-8000-000000000000", "--kind", "x"], "not several"),
    ],
)
def test_contradictory_selections_are_refused(args: list[str], message: str) -> None:
    result = run_replay(*args)

    assert result.exit_code == 1
    assert message in result.output


def test_all_goes_to_the_server() -> None:
    """`--all` passes the guard: the failure is the unreachable server, not the guard."""
    result = run_replay("--all")

    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:9" in result.output
