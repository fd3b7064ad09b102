"""Which log lines are written: the level configure_logging sets decides."""

from __future__ import annotations

import logging

from braze_bridge.logging import configure_logging, is_enabled_for


def test_debug_lines_are_enabled_only_at_the_debug_level() -> None:
    configure_logging("debug")
    assert is_enabled_for(logging.DEBUG)
    configure_logging("warning")
    assert not is_enabled_for(logging.DEBUG)
    assert is_enabled_for(logging.WARNING)
