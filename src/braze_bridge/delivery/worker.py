"""Delivery worker process entry point (the engine itself lands with the delivery issue)."""

from __future__ import annotations

import asyncio
import signal

from braze_bridge.config import Settings
from braze_bridge.logging import get_logger

log = get_logger(__name__)


async def run_worker_process(database_url: str, settings: Settings, secret_key: str) -> None:
    """Run until SIGTERM/SIGINT."""
    del database_url, settings, secret_key
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker.started")
    await stop.wait()
    log.info("worker.stopped")
