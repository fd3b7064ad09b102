"""The README's walkthrough, run exactly as a new user pastes it.

The block between `<!-- walkthrough:start -->` and `<!-- walkthrough:end -->` in README.md is
run with `bash -e` on a fresh data directory (its own embedded Postgres), with the ports moved
off 8000/9000 through the two variables the block reads. It must end with the event delivered
and the fake Braze holding the profile, and leave no process behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.support.processes import cli_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(
    r"<!-- walkthrough:start -->\s*```sh\n(?P<script>.*?)```\s*<!-- walkthrough:end -->", re.S
)


def walkthrough_script() -> str:
    found = BLOCK.search((ROOT / "README.md").read_text())
    assert found, "README.md lost its walkthrough markers"
    return found["script"]


def test_the_readme_walkthrough_runs_verbatim_and_delivers_the_reward(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(data_dir=data_dir, port=free_port(), SANDBOX_PORT=str(free_port()))
    process = subprocess.Popen(  # noqa: S603 - the README's own commands
        ["bash", "-e", "-c", walkthrough_script()],  # noqa: S607
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # one group: a hung run is stopped with everything it started
    )
    try:
        out, err = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"the walkthrough hung; its last output:\n{out.decode()[-2000:]}")
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # anything the block left running
            leftover = True
        except ProcessLookupError:
            leftover = False

    stdout = out.decode()
    assert process.returncode == 0, f"stdout:\n{stdout[-2000:]}\nstderr:\n{err.decode()[-3000:]}"
    lines = stdout.strip().splitlines()
    assert re.fullmatch(r"event [0-9a-f-]{36} delivered", lines[-2])
    profile = json.loads(lines[-1])
    assert profile["external_id"] == "u-1"
    assert profile["email"] == "ada@example.com"
    assert not leftover, "the walkthrough's last line left the service or the sandbox running"
    assert not (data_dir / "pg" / "postmaster.pid").exists(), "embedded Postgres still running"
