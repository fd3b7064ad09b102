"""Our own CLI as subprocesses: `serve`, `sandbox`, `worker`, each stopped when the block exits.

Readiness is polled with a bound and fails early when the process dies, so a broken start
reports at once instead of at the deadline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.net import free_port


class ProcessNotReady(RuntimeError):
    """The subprocess exited, or did not answer within its deadline."""


def cli_env(data_dir: Path | None = None, port: int | None = None, **extra: str) -> dict[str, str]:
    """This process's environment without any BRAZE_BRIDGE_* the developer set, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAZE_BRIDGE_")}
    if data_dir is not None:
        env["BRAZE_BRIDGE_DATA_DIR"] = str(data_dir)
    if port is not None:
        env["BRAZE_BRIDGE_PORT"] = str(port)
    env.update(extra)
    return env


def wait_ready(url: str, process: subprocess.Popen[bytes], deadline_s: float = 60) -> None:
    """Poll `url` until it answers 200, raising ProcessNotReady if the process exits first."""
    deadline = time.monotonic() + deadline_s
    with httpx.Client(timeout=1) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ProcessNotReady(f"{process.args!r} exited with {process.returncode}")
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise ProcessNotReady(f"{url} did not answer 200 within {deadline_s:g} s")


def start_cli(args: list[str], env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "braze_bridge", *args],
        env=dict(env) if env is not None else cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time; the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout)


@contextmanager
def running(
    args: list[str], ready_path: str, port: int, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Start `braze-bridge <args>`, wait until GET `ready_path` answers 200; yields the base URL."""
    process = start_cli(args, env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url + ready_path, process)
        yield base_url
    finally:
        stop(process)


@contextmanager
def running_sandbox(latency_ms: int | None = None) -> Iterator[str]:
    """The Braze sandbox (`braze-bridge sandbox`) on a free port; yields its base URL."""
    port = free_port()
    args = ["sandbox", "--port", str(port)]
    if latency_ms is not None:
        args += ["--latency-ms", str(latency_ms)]
    with running(args, "/_sandbox/received", port) as url:
        yield url


@contextmanager
def running_serve(data_dir: Path, **extra_env: str) -> Iterator[str]:
    """`braze-bridge serve` on its embedded database in `data_dir`; yields its base URL."""
    port = free_port()
    with running(["serve"], "/readyz", port, cli_env(data_dir, port, **extra_env)) as url:
        yield url


@contextmanager
def running_api(database_url: str, secret_key: str, **extra_env: str) -> Iterator[int]:
    """`braze-bridge api` on `database_url` with `extra_env` (short HTTP limits, caps) on a free
    port; yields the port."""
    port = free_port()
    env = cli_env(
        port=port,
        BRAZE_BRIDGE_DATABASE_URL=database_url,
        BRAZE_BRIDGE_SECRET_KEY=secret_key,
        **extra_env,
    )
    with running(["api"], "/readyz", port, env):
        yield port


@contextmanager
def serve_process(
    data_dir: Path, stderr_path: Path, **extra_env: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`running_serve`, for tests that stop it themselves (a signal) and read what it logged:
    yields the process and its base URL; stderr goes to `stderr_path`."""
    port = free_port()
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "braze_bridge", "serve"],
            env=cli_env(data_dir, port, **extra_env),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_ready(base_url + "/readyz", process)
            except ProcessNotReady as exc:
                stderr.flush()
                raise ProcessNotReady(f"{exc}:\n{stderr_path.read_text()[-3000:]}") from None
            yield process, base_url
        finally:
            stop(process)
