"""The ports `serve`/`api` listen on: a port in use is one clear line naming the variable to
change (nothing started), and /metrics on its own port and/or behind a bearer token
(docs/ops.md, "Metrics: GET /metrics"; docs/contract.md, "2. Configuration")."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET_KEY
from tests.support.net import free_port
from tests.support.processes import cli_env, running_api


@contextmanager
def occupied_port() -> Iterator[int]:
    """A port another process (this test) is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "braze_bridge", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def error_lines(stderr: str) -> list[str]:
    """What a person reads: stderr without the JSON log lines."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]


def test_serve_on_a_port_in_use_says_which_variable_to_change(tmp_path: Path) -> None:
    with occupied_port() as port:
        result = run_cli(["serve"], cli_env(tmp_path, port))

    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        f"error: cannot listen on 127.0.0.1:{port} (address already in use); "
        "set BRAZE_BRIDGE_PORT (or --port) to a free port"
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "pg").exists()  # refused before the embedded database started


def test_api_on_a_metrics_port_in_use_names_the_metrics_variable(tmp_path: Path) -> None:
    with occupied_port() as metrics_port:
        env = cli_env(
            tmp_path,
            free_port(),
            BRAZE_BRIDGE_DATABASE_URL="postgresql://nobody@127.0.0.1:1/never",
            BRAZE_BRIDGE_SECRET_KEY=TEST_SECRET_KEY,
            BRAZE_BRIDGE_METRICS_PORT=str(metrics_port),
        )
        result = run_cli(["api"], env)

    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        f"error: cannot listen on 127.0.0.1:{metrics_port} (address already in use); "
        "set BRAZE_BRIDGE_METRICS_PORT to a free port"
    ]
    assert "Traceback" not in result.stderr


def test_metrics_on_its_own_port_with_a_token(database_url: str) -> None:
    metrics_port = free_port()
    token = "scrape-me-7f3a"
    with running_api(
        database_url,
        TEST_SECRET_KEY,
        BRAZE_BRIDGE_METRICS_PORT=str(metrics_port),
        BRAZE_BRIDGE_METRICS_TOKEN=token,
    ) as port:
        main = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert main.status_code == 404
        assert main.json()["error"]["code"] == "not_found"

        scrape = f"http://127.0.0.1:{metrics_port}/metrics"
        missing = httpx.get(scrape)
        wrong = httpx.get(scrape, headers={"Authorization": "Bearer nope"})
        right = httpx.get(scrape, headers={"Authorization": f"Bearer {token}"})
        other_paths = httpx.get(f"http://127.0.0.1:{metrics_port}/v1/tenants")

    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        assert token not in refused.text
    assert right.status_code == 200
    assert "braze_bridge_webhooks_received_total" in right.text
    assert "braze_bridge_queue_depth_objects" in right.text
    assert other_paths.status_code == 404  # the metrics port serves nothing else


def test_a_metrics_token_guards_the_api_ports_metrics(database_url: str) -> None:
    with running_api(database_url, TEST_SECRET_KEY, BRAZE_BRIDGE_METRICS_TOKEN="t0k") as port:
        url = f"http://127.0.0.1:{port}/metrics"
        statuses = [
            httpx.get(url, headers=headers).status_code
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer t0k"})
        ]
        health = httpx.get(f"http://127.0.0.1:{port}/healthz")

    assert statuses == [401, 401, 200]
    assert health.status_code == 200  # only /metrics takes the token
