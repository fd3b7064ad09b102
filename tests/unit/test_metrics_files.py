"""Under PROMETHEUS_MULTIPROC_DIR every process writes files named by host and pid: compose's
api and worker containers share one dir and both run as pid 1, so pid alone would make them
write the same file (docs/ops.md, "Metrics: GET /metrics")."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import os, sys
from braze_bridge import metrics
metrics.WEBHOOKS_ABORTED.labels(connection_id="c1").inc(3)
sys.stdout.write(str(os.getpid()))
"""

RENDER = """
import sys
from braze_bridge import metrics
sys.stdout.write(metrics.render_latest([]).decode())
"""


def run(script: str, directory: Path) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    return subprocess.run(  # noqa: S603 - the test's own interpreter
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def test_each_process_writes_files_named_by_host_and_pid(tmp_path: Path) -> None:
    first = run(SCRIPT, tmp_path)
    second = run(SCRIPT, tmp_path)

    host = socket.gethostname().replace("_", "-")
    names = {path.name for path in tmp_path.iterdir()}
    assert {f"counter_{host}-{first}.db", f"counter_{host}-{second}.db"} <= names
    assert all(name.endswith((f"_{host}-{first}.db", f"_{host}-{second}.db")) for name in names)
    rendered = run(RENDER, tmp_path)
    assert 'braze_bridge_webhooks_aborted_total{connection_id="c1"} 6.0' in rendered
