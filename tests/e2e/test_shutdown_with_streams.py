"""Ctrl-C (or SIGTERM) of `braze-bridge serve` while console tabs hold the live feed open: the
process exits within 3 s, the streams end cleanly, and nothing is logged as an error."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import tempfile
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


@pytest.mark.parametrize(
    ("signum", "database"),
    [(signal.SIGINT, "embedded"), (signal.SIGINT, "external"), (signal.SIGTERM, "external")],
    ids=["SIGINT-embedded", "SIGINT", "SIGTERM"],
)
async def test_serve_stops_within_3_s_with_live_feeds_open(
    tmp_path: Path, signum: signal.Signals, database: str, database_url: str
) -> None:
    """With the embedded database the 3 s include its own stop (`pg_ctl stop`), which is most
    of the time on a loaded machine; with an external one, only braze-bridge's."""
    log_path = tmp_path / "serve.log"
    # Not under tmp_path: the embedded server runs as another user, and every pytest session
    # on the machine resets pytest's base directory to mode 0700, so its stop could fail.
    data_dir = Path(tempfile.mkdtemp(prefix="braze-bridge-shutdown-"))
    env = {"BRAZE_BRIDGE_BOOTSTRAP_TOKEN": TOKEN}
    if database == "external":
        env["BRAZE_BRIDGE_DATABASE_URL"] = database_url
        env["BRAZE_BRIDGE_SECRET_KEY"] = "shutdown-test-" + "k" * 32
    try:
        with serve_process(data_dir, log_path, **env) as (
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

    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    assert took <= EXIT_BUDGET_SECONDS
    assert code in (0, 128 + signum), code
    assert ended == ["ended"] * 3  # a complete response, not a dropped connection
    lines = log_path.read_text().splitlines()
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert [e for e in logged if e.get("level") in ("error", "critical")] == []
    assert not [line for line in lines if "Traceback" in line]
    assert any(e.get("event") == "app.stopped" for e in logged)
