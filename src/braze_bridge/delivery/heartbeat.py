"""A worker's liveness signal: a file whose modification time the delivery loop renews while
it turns (after each round or idle wait that reached the database). `braze-bridge
worker-health` reads its age; a container healthcheck then knows the loop runs, not only that
Postgres answers."""

from __future__ import annotations

import os
import time
from pathlib import Path

from braze_bridge.logging import get_logger

log = get_logger(__name__)

# Renewing more often buys nothing: ages are judged in tens of seconds.
MIN_INTERVAL_SECONDS = 1.0


class Heartbeat:
    def __init__(self, path: Path | None, interval: float = MIN_INTERVAL_SECONDS) -> None:
        self.path = path
        self._interval = interval
        self._last = float("-inf")
        self._failed = False

    def beat(self) -> None:
        """Renew the file's time, at most once per interval (one `utime` call, no write)."""
        if self.path is None:
            return
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        try:
            try:
                os.utime(self.path)
            except FileNotFoundError:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.touch()
        except OSError as exc:
            if not self._failed:  # once: the healthcheck will report the rest
                log.warning(
                    "worker.heartbeat_failed", path=str(self.path), error=type(exc).__name__
                )
            self._failed = True
        else:
            self._failed = False


def heartbeat_age(path: Path, now: float | None = None) -> float | None:
    """Seconds since the loop last renewed `path`, None when it never did."""
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:
        return None
    return max(0.0, (time.time() if now is None else now) - modified)
