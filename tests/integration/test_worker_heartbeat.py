"""The worker's liveness signal: its loop renews BRAZE_BRIDGE_WORKER_HEARTBEAT_FILE, and
`braze-bridge worker-health` (the compose healthcheck) passes only while that file is young
(docs/ops.md, "Worker liveness")."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.delivery.heartbeat import Heartbeat
from braze_bridge.delivery.retry import RetryPolicy
from braze_bridge.delivery.worker import DeliveryWorker, WorkerOptions
from tests.conftest import TEST_SECRET_KEY
from tests.factories import BOX
from tests.support.processes import cli_env


class SignallingHeartbeat(Heartbeat):
    """The real heartbeat, plus an event the test awaits instead of polling the file."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.renewed = asyncio.Event()

    def beat(self) -> None:
        super().beat()
        self.renewed.set()


def worker_health(heartbeat: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    extra = {"BRAZE_BRIDGE_WORKER_HEARTBEAT_FILE": str(heartbeat)} if heartbeat else {}
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "braze_bridge", "worker-health", *args],
        env=cli_env(BRAZE_BRIDGE_SECRET_KEY=TEST_SECRET_KEY, **extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_an_idle_worker_loop_renews_its_heartbeat(
    sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    path = tmp_path / "run" / "worker.heartbeat"
    options = WorkerOptions(
        lease_seconds=30,
        poll_seconds=0.05,
        linger_ms=0,
        retry=RetryPolicy(horizon_seconds=3600),
        lanes=1,
        heartbeat_file=path,
    )
    async with httpx.AsyncClient() as http:
        worker = DeliveryWorker(sessionmaker, http, BOX, options=options)
        heartbeat = SignallingHeartbeat(path)
        worker.heartbeat = heartbeat
        running = asyncio.create_task(worker.run())
        try:
            await asyncio.wait_for(heartbeat.renewed.wait(), timeout=10)
            first = path.stat().st_mtime
            os.utime(path, (first - 600, first - 600))  # as if the loop had stalled
            heartbeat._last = float("-inf")  # let the next round renew at once
            heartbeat.renewed.clear()
            await asyncio.wait_for(heartbeat.renewed.wait(), timeout=10)
        finally:
            worker.stop()
            await running
    assert time.time() - path.stat().st_mtime < 60  # the idle loop renewed it


def test_worker_health_passes_only_while_the_heartbeat_is_young(tmp_path: Path) -> None:
    path = tmp_path / "worker.heartbeat"

    never = worker_health(path)
    path.touch()
    fresh = worker_health(path)
    os.utime(path, (time.time() - 300, time.time() - 300))
    stale = worker_health(path)
    lenient = worker_health(path, "--max-age", "600")
    unset = worker_health(None)

    assert never.returncode == 1
    assert "the worker loop has not run yet" in never.stderr
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.startswith("ok: worker loop ran")
    assert stale.returncode == 1
    assert re.search(r"the worker loop last ran 30\d s ago \(more than 120 s\)", stale.stderr)
    assert lenient.returncode == 0
    assert unset.returncode == 2
    assert "BRAZE_BRIDGE_WORKER_HEARTBEAT_FILE" in unset.stderr
