"""The quick start: `serve` on an embedded database, and a second `serve` refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cli_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAZE_BRIDGE_")}
    env.update(BRAZE_BRIDGE_DATA_DIR=str(data_dir), BRAZE_BRIDGE_PORT=str(port))
    return env


def wait_ready(
    url: str, process: subprocess.Popen[bytes], deadline_s: float = 60
) -> httpx.Response:
    """Poll /readyz until it answers 200 (bounded), failing early if the server died."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited early with {process.returncode}")
        try:
            response = httpx.get(url, timeout=1)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("serve did not become ready within 60 s")


@pytest.fixture
def running_serve(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "braze_bridge", "serve"],
        env=cli_env(tmp_path, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        yield tmp_path, port
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_on_an_embedded_database_becomes_ready(running_serve: tuple[Path, int]) -> None:
    data_dir, port = running_serve
    assert httpx.get(f"http://127.0.0.1:{port}/readyz").json()["status"] == "ready"
    assert (data_dir / "secret.key").exists()


def test_a_second_serve_on_the_same_data_dir_is_refused(running_serve: tuple[Path, int]) -> None:
    data_dir, port = running_serve

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
    assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200


def test_admin_commands_work_beside_a_running_serve(running_serve: tuple[Path, int]) -> None:
    data_dir, port = running_serve
    env = cli_env(data_dir, port)
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
    assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200


def test_stopping_serve_stops_its_embedded_database(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "braze_bridge", "serve"],
        env=cli_env(tmp_path, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        assert (tmp_path / "pg" / "postmaster.pid").exists()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert not (tmp_path / "pg" / "postmaster.pid").exists()
