"""Ctrl-C (or SIGTERM) of `braze-bridge serve` while console tabs hold the live feed open: the
process exits within 3 s, the streams end cleanly, and nothing is logged as an error."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import serve_process

pytestmark = pytest.mark.slow

TOKEN = "bbo_" + "s" * 40
EXIT_BUDGET_SECONDS = 3.0


async def open_stream(client: httpx.AsyncClient, opened: asyncio.Event) -> str:
    """Read one live feed until the server ends it; how it ended."""
    try:
        async with client.stream(
            "GET", "/v1/events/stream", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("retry:"):
                    opened.set()
        return "ended"
    except httpx.HTTPError as exc:
        return type(exc).__name__


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_serve_stops_within_3_s_with_live_feeds_open(
    tmp_path: Path, signum: signal.Signals
) -> None:
    log_path = tmp_path / "serve.log"
    with serve_process(tmp_path / "data", log_path, BRAZE_BRIDGE_BOOTSTRAP_TOKEN=TOKEN) as (
        process,
        url,
    ):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            opened = [asyncio.Event() for _ in range(3)]
            streams = [asyncio.create_task(open_stream(client, e)) for e in opened]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), 30)

            signalled = time.monotonic()
            process.send_signal(signum)
            try:
                code = await asyncio.to_thread(process.wait, EXIT_BUDGET_SECONDS)
            except subprocess.TimeoutExpired:
                pytest.fail(
                    f"serve still running {EXIT_BUDGET_SECONDS} s after {signum.name}:\n"
                    + log_path.read_text()[-4000:]
                )
            took = time.monotonic() - signalled
            ended = await asyncio.wait_for(asyncio.gather(*streams), 10)

    assert took <= EXIT_BUDGET_SECONDS
    assert code in (0, 128 + signum), code
    assert ended == ["ended"] * 3  # a complete response, not a dropped connection
    lines = log_path.read_text().splitlines()
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert [e for e in logged if e.get("level") in ("error", "critical")] == []
    assert not [line for line in lines if "Traceback" in line]
    assert any(e.get("event") == "app.stopped" for e in logged)
