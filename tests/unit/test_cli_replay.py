"""`braze-bridge replay` option handling that needs no server."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

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
