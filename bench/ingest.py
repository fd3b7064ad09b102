"""Durable webhook ingest rate: braze-bridge vs a bare FastAPI + asyncpg endpoint, same machine.

    .venv/bin/python bench/ingest.py [--requests 4000] [--concurrency 64] [--rounds 1]
        [--server postgresql://postgres@127.0.0.1:5432/postgres]

Both servers are real uvicorn processes on the same PostgreSQL (fsync on, synchronous_commit
on). The baseline answers after one INSERT per request in its own transaction. braze-bridge
answers after verifying the HMAC signature, parsing, normalizing, mapping and committing the event,
raw body and Braze operations (group commit). Each run gets its own database, dropped at the end.
A 200 from either server means the request's rows are committed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI, Request

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-secret-key"  # noqa: S105 - a throwaway database
WEBHOOK_SECRET = "whsec_bench-0123456789abcdef0123456789abcdef"  # noqa: S105


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the baseline server (run in its own process by `baseline` mode) -------------------------


def run_baseline(dsn: str, port: int) -> None:
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, str]:
        body = await request.body()
        assert pool is not None
        async with pool.acquire() as conn:
            await conn.execute("INSERT INTO baseline_events (body) VALUES ($1)", body)
        return {"status": "accepted"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# --- setup ------------------------------------------------------------------------------------


async def create_database(server: str) -> tuple[str, str]:
    name = f"bench_ingest_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name, with_database(server, name)


async def drop_database(server: str, name: str) -> None:
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def seed_connection(url: str) -> uuid.UUID:
    """One tenant and one HMAC-signed Extole connection, written as the admin API would."""
    sys.path.insert(0, str(ROOT / "src"))
    from braze_bridge.security.secrets import SecretBox

    box = SecretBox(SECRET_KEY)
    conn = await asyncpg.connect(url)
    try:
        tenant_id, connection_id = uuid.uuid4(), uuid.uuid4()
        await conn.execute(
            "INSERT INTO tenants (id, slug, name) VALUES ($1, 'bench', 'Bench')", tenant_id
        )
        await conn.execute(
            """INSERT INTO connections (id, tenant_id, name, source, state, braze_rest_endpoint,
                 braze_api_key_enc, braze_api_key_last4, webhook_auth_mode, webhook_secret_enc,
                 settings, version)
               VALUES ($1, $2, 'bench', 'extole', 'active', 'https://rest.iad-01.braze.com',
                 $3, 'abcd', 'hmac_sha256', $4, $5::jsonb, 1)""",
            connection_id,
            tenant_id,
            box.encrypt("braze-api-key"),
            box.encrypt(WEBHOOK_SECRET),
            json.dumps({"reward_states": ["EARNED", "FULFILLED"]}),
        )
        await conn.execute(
            "CREATE TABLE baseline_events (id bigserial PRIMARY KEY, body bytea NOT NULL)"
        )
    finally:
        await conn.close()
    return connection_id


async def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


# --- load -------------------------------------------------------------------------------------


def webhook_body(n: int) -> bytes:
    return json.dumps(
        {
            "type": "reward_fulfilled",
            "event_id": f"bench-{n}-{uuid.uuid4().hex}",
            "event_time": "2024-05-29T14:15:02.001Z",
            "reward_id": f"reward-{n}",
            "reward_supplier_type": "MANUAL_COUPON",
            "partner_user_id": f"user-{n % 500}",
            "face_value": 20,
            "face_value_type": "PERCENT_OFF",
            "partner_reward_id": f"COUPON{n}",
            "data": {"recipient_email": f"user{n % 500}@example.com"},
            "schema_version": 1,
        },
        separators=(",", ":"),
    ).encode()


class KeepAliveConnection:
    """A minimal HTTP/1.1 keep-alive client connection for the load generator.

    httpx costs ~5-15 ms of CPU per request here, more than either server; on a 2-core machine
    that would measure the client. This sends pre-built requests and reads `Content-Length`
    answers, which is all both servers produce.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> KeepAliveConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def post(self, request: bytes) -> int:
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    def close(self) -> None:
        self.writer.close()


def build_request(host: str, port: int, path: str, body: bytes, sign: bool) -> bytes:
    headers = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if sign:
        signature = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers.append(f"X-Extole-Signature: {signature}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


async def fire(
    url: str, bodies: list[bytes], concurrency: int, sign: bool, time_limit: float
) -> tuple[int, float]:
    """Send every body over `concurrency` keep-alive connections (bounded by `time_limit`).

    Returns (200 answers, seconds). Requests are signed before the clock starts.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(build_request(host, port, parts.path, body, sign))
    ok = 0
    failures: dict[str, int] = {}
    deadline = time.monotonic() + time_limit

    async def worker() -> None:
        nonlocal ok
        connection = await KeepAliveConnection.open(host, port)
        try:
            while not queue.empty() and time.monotonic() < deadline:
                request = queue.get_nowait()
                try:
                    status = await connection.post(request)
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                    connection.close()
                    connection = await KeepAliveConnection.open(host, port)
                    continue
                if status == 200:
                    ok += 1
                else:
                    failures[str(status)] = failures.get(str(status), 0) + 1
        finally:
            connection.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    if failures:
        print(f"  not acknowledged by {url}: {failures}")
    return ok, elapsed


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def backend_cpu(url: str) -> dict[int, float]:
    """CPU seconds so far of every Postgres backend connected to the bench database.

    Both servers use that database, but only the one under load is busy during a run. A backend
    that closes during a run is missed, so this is a floor (the pools stay open here).
    """
    conn = await asyncpg.connect(url)
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    usage = {}
    for row in pids:
        with contextlib.suppress(OSError):  # gone meanwhile, or Postgres on another host
            usage[row["pid"]] = cpu_seconds(row["pid"])
    return usage


async def measure(
    name: str,
    url: str,
    database_url: str,
    server_pid: int,
    requests: int,
    concurrency: int,
    sign: bool,
    time_limit: float,
) -> float:
    await fire(url, [webhook_body(-n - 1) for n in range(200)], concurrency, sign, time_limit)
    bodies = [webhook_body(n) for n in range(requests)]
    backends_before = await backend_cpu(database_url)
    server_cpu, client_cpu = cpu_seconds(server_pid), cpu_seconds(os.getpid())
    ok, elapsed = await fire(url, bodies, concurrency, sign, time_limit)
    server_cpu = cpu_seconds(server_pid) - server_cpu
    client_cpu = cpu_seconds(os.getpid()) - client_cpu
    backends_after = await backend_cpu(database_url)
    postgres_cpu = sum(used - backends_before.get(pid, 0.0) for pid, used in backends_after.items())
    rate = ok / elapsed
    print(
        f"  {name:<13} {ok:>6} acknowledged in {elapsed:6.2f} s = {rate:8.1f} webhooks/s"
        f"  (CPU µs per webhook: server {1e6 * server_cpu / max(ok, 1):.0f},"
        f" client {1e6 * client_cpu / max(ok, 1):.0f},"
        f" Postgres backends {1e6 * postgres_cpu / max(ok, 1):.0f})"
    )
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="alternating runs of both servers")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per run, at most")
    parser.add_argument(
        "--server",
        default=os.environ.get(
            "BRAZE_BRIDGE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()

    name, url = await create_database(args.server)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run(  # noqa: S603 - our own CLI
            [str(ROOT / ".venv/bin/braze-bridge"), "migrate"],
            env={
                **os.environ,
                "BRAZE_BRIDGE_DATABASE_URL": url,
                "BRAZE_BRIDGE_SECRET_KEY": SECRET_KEY,
            },
            check=True,
            capture_output=True,
        )
        connection_id = await seed_connection(url)
        app_port, base_port = free_port(), free_port()
        app_env = {
            **os.environ,
            "BRAZE_BRIDGE_DATABASE_URL": url,
            "BRAZE_BRIDGE_SECRET_KEY": SECRET_KEY,
            # BENCH_APP_LOG_LEVEL=info includes the one `webhook.handled` line per webhook.
            "BRAZE_BRIDGE_LOG_LEVEL": os.environ.get("BENCH_APP_LOG_LEVEL", "warning"),
        }
        processes.append(
            subprocess.Popen(  # noqa: S603
                [str(ROOT / ".venv/bin/braze-bridge"), "api", "--port", str(app_port)],
                env=app_env,
                stderr=open(os.environ.get("BENCH_APP_LOG", os.devnull), "wb"),  # noqa: SIM115
            )
        )
        processes.append(
            subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    __file__,
                    "--baseline",
                    url.replace("+asyncpg", ""),
                    str(base_port),
                ],
                stderr=subprocess.DEVNULL,
            )
        )
        await wait_until_up(f"http://127.0.0.1:{app_port}/healthz", processes[0])
        await wait_until_up(f"http://127.0.0.1:{base_port}/docs", processes[1])

        print(
            f"{args.requests} webhooks, concurrency {args.concurrency}, "
            f"Postgres fsync=on synchronous_commit=on, {os.cpu_count()} CPUs shared by client, "
            "servers and Postgres"
        )

        servers = {
            # name: (URL, server pid, signed)
            "baseline": (f"http://127.0.0.1:{base_port}/hook", processes[1].pid, False),
            "braze-bridge": (
                f"http://127.0.0.1:{app_port}/v1/hooks/{connection_id}",
                processes[0].pid,
                True,
            ),
        }

        async def run_once(name: str) -> float:
            target, pid, signed = servers[name]
            return await measure(
                name, target, url, pid, args.requests, args.concurrency, signed, args.time_limit
            )

        # Rounds alternate which server goes first, so a load that comes and goes on a shared
        # machine does not always land on the same side; the median ratio is the figure.
        ratios = []
        for round_number in range(args.rounds):
            if round_number % 2 == 0:
                baseline = await run_once("baseline")
                bridge = await run_once("braze-bridge")
            else:
                bridge = await run_once("braze-bridge")
                baseline = await run_once("baseline")
            ratios.append(bridge / baseline)
            if args.rounds > 1:
                print(f"  round {round_number + 1}: ratio {bridge / baseline:.2f}")
        conn = await asyncpg.connect(url)
        try:
            events = await conn.fetchval("SELECT count(*) FROM events")
            operations = await conn.fetchval("SELECT count(*) FROM operations")
        finally:
            await conn.close()
        print(f"  stored by braze-bridge: {events} events, {operations} operations")
        label = "ratio" if args.rounds == 1 else f"median ratio of {args.rounds} rounds"
        print(f"  {label} braze-bridge / baseline = {statistics.median(ratios):.2f}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        await drop_database(args.server, name)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--baseline":
        run_baseline(sys.argv[2], int(sys.argv[3]))
    else:
        asyncio.run(main())
