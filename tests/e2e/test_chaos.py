"""Chaos: what partners were told was stored is stored, and all of it reaches Braze.

`bench/faults.py` runs the real `api` and two `worker` processes on a fresh database, with the
sandbox as Braze, while signed Extole webhooks arrive and three kinds of fault strike in turn:
Postgres backends of the workers and of the API terminated mid-ingest and mid-settle, a storm
of 503 and 429 answers from Braze, and workers SIGKILLed and restarted. A partner retries a
webhook that was not answered 200, as Extole does.

What must hold: every webhook was acknowledged (200), each acknowledged webhook is stored as
exactly one event, every stored object ends `delivered` and Braze accepted each at least once.
Braze cannot deduplicate, so an object may be accepted twice only when a fault struck between
Braze's answer and the settlement of its request: at most one in-flight request (75 objects)
per worker per fault. `make chaos` runs this test alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from braze_bridge.braze.models import MAX_TRACK_OBJECTS
from tests.support.processes import cli_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WEBHOOKS = 600
WORKERS = 2


def test_acknowledged_equals_stored_equals_delivered_under_faults(
    pg_server_url: str, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        str(ROOT / "bench" / "faults.py"),
        *("--webhooks", str(WEBHOOKS), "--workers", str(WORKERS)),
        *("--send-seconds", "12", "--terminate-seconds", "8", "--terminate-every", "1.5"),
        "--terminate-api",
        *("--storm-seconds", "3", "--storm-429", "--kills", "2", "--kill-every", "2"),
        *("--drain-timeout", "120", "--logs", str(tmp_path)),
    ]
    env = cli_env(BRAZE_BRIDGE_TEST_DATABASE_URL=pg_server_url)
    env["PYTHONPATH"] = str(ROOT / "src")
    finished = subprocess.run(  # noqa: S603 - the project's own harness
        command, cwd=ROOT, env=env, capture_output=True, timeout=300, check=False
    )
    assert finished.returncode == 0, finished.stderr.decode()[-3000:]
    result = json.loads(finished.stdout.decode().splitlines()[0])

    faults = result["faults"]
    assert faults["backends_terminated"] > 0, result  # the faults really struck
    assert faults["storm_503s"] > 0, result
    assert faults["worker_kills"] == 2, result
    assert (result["stored"], result["given_up"]) == (WEBHOOKS, 0), result
    assert result["events"] == WEBHOOKS, result
    assert result["objects"] >= WEBHOOKS, result
    assert result["statuses"] == {"delivered": result["objects"]}, result
    assert result["lost"] == 0, result
    strikes = faults["terminate_rounds"] + faults["worker_kills"]
    assert result["extra_sends"] <= MAX_TRACK_OBJECTS * WORKERS * strikes, result
