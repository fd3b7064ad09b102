"""Delivery benchmark: drain a backlog into the Braze sandbox with 1 and 2 worker processes.

    BRAZE_BRIDGE_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/delivery.py [--objects 100000] [--workers 1,2] [--emails 500]

Everything runs as separate processes over real HTTP and a real Postgres: the sandbox
(`braze-bridge sandbox`), and N `braze-bridge worker` processes. For each worker count the
script loads a fresh backlog (half attribute objects, half events, two per user), starts the
workers and reports objects/s, requests/s, objects per request and worker RSS (start, peak,
end). The 1-worker run is the baseline the 2-worker run is compared with. Then it measures
identity resolution: N distinct unknown emails, 4 objects each, and how many
`/users/export/ids` calls that cost (ideal: exactly N).

Steady load (`--steady RATE --seconds S`): signed Extole webhooks go through a real
`braze-bridge api` process at a fixed rate while the workers deliver them into the sandbox; the
script reports objects per /users/track request, Braze requests/s and the latency from webhook
receipt (the operation's insert) to Braze's acceptance (its settle after the 201), p50/p99.
Noisy neighbour (`--noisy BACKLOG`): tenant A's connection starts with BACKLOG queued objects
while tenant B's connection receives webhooks at `--noisy-rate` (5/s) for `--seconds`; the
script reports B's latency p50/p99 and how far A drained meanwhile.

With BENCH_PYSPY_DIR=<folder> (and py-spy on PATH) each worker and the sandbox are recorded
by py-spy as collapsed stacks, one file per process.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from braze_bridge.db import migrate
from braze_bridge.security.secrets import SecretBox

SECRET = "bench-secret-key"  # noqa: S105 - a throwaway benchmark database
WEBHOOK_SECRET = "whsec"  # noqa: S105 - the bench connections' webhook secret
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Run:
    workers: int
    objects: int
    seconds: float
    steady_seconds: float
    requests: int
    rss_start: float
    rss_peak: float
    rss_end: float
    cpu_workers: float
    cpu_postgres: float
    cpu_sandbox: float
    # Worker CPU between the 5 % and 95 % delivered marks: the rate a worker sustains once
    # started, without the process start (imports, connections) the total above includes.
    cpu_workers_steady: float

    @property
    def objects_per_second(self) -> float:
        return self.objects / self.seconds

    @property
    def steady_objects_per_second(self) -> float:
        return self.objects * 0.9 / self.steady_seconds

    @property
    def objects_per_request(self) -> float:
        return self.objects / max(1, self.requests)


async def create_database(server_url: str) -> str:
    name = f"bb_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = with_db(server_url, name)
    await asyncio.to_thread(migrate.upgrade, url)
    return url


async def drop_database(server_url: str, url: str) -> None:
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')
    await admin.close()


async def make_connection(
    db: asyncpg.Connection, endpoint: str, settings: str = "{}"
) -> tuple[uuid.UUID, uuid.UUID]:
    box = SecretBox(SECRET)
    tenant = uuid.uuid4()
    connection = uuid.uuid4()
    await db.execute(
        "INSERT INTO tenants (id, slug, name) VALUES ($1, $2, 'Bench')",
        tenant,
        f"bench-{tenant.hex[:6]}",
    )
    await db.execute(
        """
INSERT INTO connections (id, tenant_id, name, source, state, braze_rest_endpoint,
    braze_api_key_enc, braze_api_key_last4, webhook_auth_mode, webhook_secret_enc, settings,
    track_rate_limit, track_rate_window_seconds, export_rate_limit, export_rate_window_seconds)
VALUES ($1, $2, 'bench', 'extole', 'active', $3, $4, 'ench', 'hmac_sha256', $5, $6::jsonb,
        1000000, 3, 1000000, 60)
""",
        connection,
        tenant,
        endpoint,
        box.encrypt(f"bench-key-{connection.hex}"),
        box.encrypt(WEBHOOK_SECRET),
        settings,
    )
    return tenant, connection


async def load_backlog(
    db: asyncpg.Connection, tenant: uuid.UUID, connection: uuid.UUID, objects: int
) -> None:
    """`objects` operations: per user one attributes object and one event (one event row each)."""
    users = objects // 2
    await db.execute(
        """
INSERT INTO events (id, tenant_id, connection_id, dedupe_key, status, kind)
SELECT gen_random_uuid(), $1, $2, 'bench-' || g, 'queued', 'bench'
FROM generate_series(1, $3) g
""",
        tenant,
        connection,
        users,
    )
    await db.execute(
        """
INSERT INTO operations (event_id, tenant_id, connection_id, position, kind, user_key,
                        external_id, unknown_user, status, payload)
SELECT e.id, e.tenant_id, e.connection_id, p.pos, p.kind, 'id:u' || e.n, 'u' || e.n, 'alias',
       'pending',
       CASE WHEN p.kind = 'attributes'
            THEN jsonb_build_object('bench_n', e.n, 'tier', 'gold', 'email', 'u' || e.n || '@example.com')
            ELSE jsonb_build_object('name', 'bench_event', 'time', '2026-01-01T00:00:00Z',
                                    'properties', jsonb_build_object('n', e.n, 'partner', 'Extole'))
       END
FROM (SELECT id, tenant_id, connection_id, substr(dedupe_key, 7)::int AS n FROM events
      WHERE connection_id = $1) e
CROSS JOIN (VALUES (0, 'attributes'), (1, 'events')) AS p(pos, kind)
ORDER BY e.n, p.pos
""",
        connection,
    )
    await db.execute("ANALYZE operations")


def start_workers(url: str, count: int) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAZE_BRIDGE_")}
    env.update(
        BRAZE_BRIDGE_DATABASE_URL=url,
        BRAZE_BRIDGE_SECRET_KEY=SECRET,
        BRAZE_BRIDGE_LOG_LEVEL="warning",
    )
    return [
        subprocess.Popen(
            [sys.executable, "-m", "braze_bridge", "worker"], env=env, stdout=subprocess.DEVNULL
        )
        for _ in range(count)
    ]


def start_profilers(
    processes: list[subprocess.Popen[bytes]], sandbox_pid: int
) -> list[subprocess.Popen[bytes]]:
    """With BENCH_PYSPY_DIR set: py-spy records each worker and the sandbox (collapsed stacks)."""
    folder = os.environ.get("BENCH_PYSPY_DIR")
    if not folder:
        return []
    pids = {f"worker-{len(processes)}-{i}": p.pid for i, p in enumerate(processes)}
    pids[f"sandbox-{len(processes)}"] = sandbox_pid
    record = ["py-spy", "record", "--nonblocking", "--rate", "200", "--format", "raw"]
    return [
        subprocess.Popen(  # noqa: S603 - a profiler the caller asked for
            [*record, "--pid", str(pid), "-o", f"{folder}/{name}.txt"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for p in profilers:
        p.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    for p in profilers:
        p.wait(30)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in processes:
        p.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


async def drain(server_url: str, sandbox: str, sandbox_pid: int, objects: int, workers: int) -> Run:
    url = await create_database(server_url)
    db = await asyncpg.connect(url)
    try:
        httpx.post(f"{sandbox}/_sandbox/reset")
        tenant, connection = await make_connection(db, sandbox)
        await load_backlog(db, tenant, connection, objects)
        sandbox_cpu = cpu_seconds(sandbox_pid)
        processes = start_workers(url, workers)
        profilers = start_profilers(processes, sandbox_pid)
        started = time.perf_counter()
        rss_start = rss_peak = 0.0
        first_mark = last_mark = None
        first_cpu = last_cpu = 0.0
        delivered = 0
        while delivered < objects:
            await asyncio.sleep(0.25)
            delivered = await db.fetchval(
                "SELECT count(*) FROM operations WHERE status = 'delivered'"
            )
            rss = sum(rss_mb(p.pid) for p in processes)
            rss_start = rss_start or rss
            rss_peak = max(rss_peak, rss)
            now = time.perf_counter()
            if first_mark is None and delivered >= objects * 0.05:
                first_mark = now
                first_cpu = sum(cpu_seconds(p.pid) for p in processes)
            if last_mark is None and delivered >= objects * 0.95:
                last_mark = now
                last_cpu = sum(cpu_seconds(p.pid) for p in processes)
            if any(p.poll() is not None for p in processes):
                raise SystemExit("a worker exited early")
            if now - started > 1800:
                raise SystemExit(f"timed out with {delivered} delivered")
        seconds = time.perf_counter() - started
        rss_end = sum(rss_mb(p.pid) for p in processes)
        cpu_workers = sum(cpu_seconds(p.pid) for p in processes)
        backends = await db.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        cpu_postgres = sum(cpu_seconds(row["pid"]) for row in backends)
        cpu_sandbox = cpu_seconds(sandbox_pid) - sandbox_cpu
        stop_profilers(profilers)
        stop(processes)
        requests = await db.fetchval("SELECT count(*) FROM delivery_attempts")
        steady = (last_mark or seconds) - (first_mark or 0.0)
        return Run(
            workers,
            objects,
            seconds,
            steady,
            requests,
            rss_start,
            rss_peak,
            rss_end,
            cpu_workers,
            cpu_postgres,
            cpu_sandbox,
            last_cpu - first_cpu,
        )
    finally:
        await db.close()
        await drop_database(server_url, url)


async def identity(server_url: str, sandbox: str, emails: int) -> tuple[int, int, float]:
    url = await create_database(server_url)
    db = await asyncpg.connect(url)
    try:
        httpx.post(f"{sandbox}/_sandbox/reset")
        tenant, connection = await make_connection(db, sandbox)
        per_email = 4
        await db.execute(
            """
INSERT INTO events (id, tenant_id, connection_id, dedupe_key, status, kind)
SELECT gen_random_uuid(), $1, $2, 'bench-' || g, 'queued', 'bench' FROM generate_series(1, $3) g
""",
            tenant,
            connection,
            emails * per_email,
        )
        await db.execute(
            """
INSERT INTO operations (event_id, tenant_id, connection_id, position, kind, user_key, email,
                        unknown_user, status, payload)
SELECT e.id, e.tenant_id, e.connection_id, 0, 'events', 'email:new' || (e.n % $2) || '@example.com',
       'new' || (e.n % $2) || '@example.com', 'alias', 'pending',
       jsonb_build_object('name', 'bench_event', 'time', '2026-01-01T00:00:00Z')
FROM (SELECT id, tenant_id, connection_id, substr(dedupe_key, 7)::int AS n FROM events
      WHERE connection_id = $1) e
ORDER BY e.n
""",
            connection,
            emails,
        )
        processes = start_workers(url, 1)
        started = time.perf_counter()
        total = emails * per_email
        while (
            await db.fetchval("SELECT count(*) FROM operations WHERE status = 'delivered'") < total
        ):
            await asyncio.sleep(0.2)
            if time.perf_counter() - started > 600:
                raise SystemExit("identity run timed out")
        seconds = time.perf_counter() - started
        stop(processes)
        counts = httpx.get(f"{sandbox}/_sandbox/received", params={"limit": 1}).json()["counts"]
        return counts.get("/users/export/ids 201", 0), total, seconds
    finally:
        await db.close()
        await drop_database(server_url, url)


# --- steady load through the API ----------------------------------------------------------------

EXTOLE_SETTINGS = json.dumps({"reward_states": ["EARNED", "FULFILLED"]})


def webhook(n: int, tag: str) -> bytes:
    """An Extole `reward_fulfilled` webhook of its own user (attributes + event objects)."""
    return json.dumps(
        {
            "type": "reward_fulfilled",
            "event_id": f"bench-{tag}-{n}",
            "event_time": "2026-05-29T14:15:02.001Z",
            "reward_id": f"reward-{tag}-{n}",
            "reward_supplier_type": "MANUAL_COUPON",
            "partner_user_id": f"user-{tag}-{n}",
            "face_value": 20,
            "face_value_type": "PERCENT_OFF",
            "partner_reward_id": f"COUPON{n}",
            "data": {"recipient_email": f"user-{tag}-{n}@example.com"},
            "schema_version": 1,
        },
        separators=(",", ":"),
    ).encode()


def signed_request(port: int, path: str, body: bytes) -> bytes:
    signature = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Extole-Signature: {signature}\r\n\r\n"
    )
    return head.encode() + body


async def post_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    """One keep-alive request (httpx's client CPU would distort a 2-core machine)."""
    writer.write(req)
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status.split()[1])


async def send_at_rate(
    port: int, connection: uuid.UUID, rate: float, seconds: float, tag: str
) -> tuple[int, float]:
    """POST signed webhooks at `rate` per second for `seconds`; returns (200s, achieved rate)."""
    total = int(rate * seconds)
    path = f"/v1/hooks/{connection}"
    requests = [signed_request(port, path, webhook(n, tag)) for n in range(total)]
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    ok = 0
    senders = max(2, min(64, int(rate / 20)))

    async def sender() -> None:
        nonlocal ok
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (req := await queue.get()) is not None:
                ok += 200 <= await post_all(reader, writer, req) < 300
        finally:
            writer.close()

    tasks = [asyncio.create_task(sender()) for _ in range(senders)]
    started = time.perf_counter()
    for n, req in enumerate(requests):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(req)
    for _ in tasks:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    return ok, total / (time.perf_counter() - started)


def start_api(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAZE_BRIDGE_")}
    env.update(
        BRAZE_BRIDGE_DATABASE_URL=url,
        BRAZE_BRIDGE_SECRET_KEY=SECRET,
        BRAZE_BRIDGE_LOG_LEVEL="warning",
    )
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "braze_bridge", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_up(port: int, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if process.poll() is not None:
                raise SystemExit("the api exited")
            try:
                await client.get(f"http://127.0.0.1:{port}/healthz")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise SystemExit("the api did not come up")


LATENCY_SQL = """
SELECT count(*),
       percentile_disc(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - created_at)),
       percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM settled_at - created_at)),
       max(extract(epoch FROM settled_at - created_at))
FROM operations WHERE status = 'delivered' AND connection_id = $1
"""


async def wait_delivered(db: asyncpg.Connection, connection: uuid.UUID, total: int) -> int:
    deadline = time.perf_counter() + 120
    delivered = 0
    while time.perf_counter() < deadline:
        delivered = await db.fetchval(
            "SELECT count(*) FROM operations WHERE connection_id = $1 AND status = 'delivered'",
            connection,
        )
        if delivered >= total:
            break
        await asyncio.sleep(0.25)
    return int(delivered)


async def run_steady(
    server_url: str, sandbox: str, rate: float, seconds: float, workers: int
) -> None:
    url = await create_database(server_url)
    db = await asyncpg.connect(url)
    port = free_port()
    api = start_api(url, port)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        httpx.post(f"{sandbox}/_sandbox/reset")
        _, connection = await make_connection(db, sandbox, EXTOLE_SETTINGS)
        await wait_up(port, api)
        processes = start_workers(url, workers)
        await asyncio.sleep(3)  # worker start-up is not part of the steady state
        cpu_before = sum(cpu_seconds(p.pid) for p in processes)
        _, achieved = await send_at_rate(port, connection, rate, seconds, "s")
        expected = await db.fetchval(
            "SELECT count(*) FROM operations WHERE connection_id = $1", connection
        )
        delivered = await wait_delivered(db, connection, expected)
        cpu_workers = sum(cpu_seconds(p.pid) for p in processes) - cpu_before
        count, p50, p99, worst = await db.fetchrow(LATENCY_SQL, connection)
        requests = await db.fetchval(
            "SELECT count(*) FROM delivery_attempts WHERE endpoint = '/users/track'"
        )
        stop(processes)
        print(
            f"steady {rate:.0f}/s for {seconds:.0f} s, {workers} worker(s), sandbox {sandbox}: "
            f"{int(rate * seconds)} webhooks sent at {achieved:.0f}/s, {expected} objects, "
            f"{delivered} delivered"
        )
        print(
            f"  objects/request {count / max(1, requests):.1f}  Braze requests {requests} "
            f"({requests * achieved / (rate * seconds):.1f}/s over the send)  latency p50 {p50 or 0:.3f} s  "
            f"p99 {p99 or 0:.3f} s  max {worst or 0:.3f} s  worker CPU µs/object "
            f"{cpu_workers * 1e6 / max(1, delivered):.0f}"
        )
    finally:
        stop(processes)
        stop([api])
        await db.close()
        await drop_database(server_url, url)


async def noisy(
    server_url: str, sandbox: str, backlog: int, rate: float, seconds: float, workers: int
) -> None:
    url = await create_database(server_url)
    db = await asyncpg.connect(url)
    port = free_port()
    api = start_api(url, port)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        httpx.post(f"{sandbox}/_sandbox/reset")
        tenant_a, connection_a = await make_connection(db, sandbox)
        await load_backlog(db, tenant_a, connection_a, backlog)
        _, connection_b = await make_connection(db, sandbox, EXTOLE_SETTINGS)
        await wait_up(port, api)
        processes = start_workers(url, workers)
        ok, _ = await send_at_rate(port, connection_b, rate, seconds, "b")
        expected = await db.fetchval(
            "SELECT count(*) FROM operations WHERE connection_id = $1", connection_b
        )
        a_done = await db.fetchval(
            "SELECT count(*) FROM operations WHERE connection_id = $1 AND status = 'delivered'",
            connection_a,
        )
        await wait_delivered(db, connection_b, expected)
        count, p50, p99, worst = await db.fetchrow(LATENCY_SQL, connection_b)
        stop(processes)
        print(
            f"noisy neighbour: tenant A backlog {backlog} objects, tenant B {rate:.0f}/s for "
            f"{seconds:.0f} s ({ok} webhooks, {expected} objects), {workers} worker(s)"
        )
        print(
            f"  B delivered {count}: latency p50 {p50 or 0:.3f} s  p99 {p99 or 0:.3f} s  "
            f"max {worst or 0:.3f} s;  A delivered meanwhile {a_done} of {backlog}"
        )
    finally:
        stop(processes)
        stop([api])
        await db.close()
        await drop_database(server_url, url)


def start_sandbox(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [
            sys.executable,
            "-m",
            "braze_bridge",
            "sandbox",
            "--port",
            str(port),
            "--rate-limit-per-3s",
            "1000000",
            "--export-rate-limit-per-minute",
            "1000000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sandbox/received", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    return process


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--emails", type=int, default=500)
    parser.add_argument("--steady", type=float, help="webhooks/s through the API (steady mode)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--noisy", type=int, help="tenant A's backlog (noisy-neighbour mode)")
    parser.add_argument("--noisy-rate", type=float, default=5.0)
    args = parser.parse_args()
    server_url = os.environ.get(
        "BRAZE_BRIDGE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    if args.steady or args.noisy:
        port = free_port()
        process = start_sandbox(port)
        sandbox = f"http://127.0.0.1:{port}"
        workers = int(args.workers.split(",")[-1])
        try:
            if args.steady:
                await run_steady(server_url, sandbox, args.steady, args.seconds, workers)
            if args.noisy:
                await noisy(server_url, sandbox, args.noisy, args.noisy_rate, args.seconds, workers)
        finally:
            process.terminate()
            process.wait(10)
        return

    port = free_port()
    sandbox_process = subprocess.Popen(  # noqa: S603 - our own CLI
        [
            sys.executable,
            "-m",
            "braze_bridge",
            "sandbox",
            "--port",
            str(port),
            "--rate-limit-per-3s",
            "1000000",
            "--export-rate-limit-per-minute",
            "1000000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sandbox = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{sandbox}/_sandbox/received", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        runs = [
            await drain(server_url, sandbox, sandbox_process.pid, args.objects, int(n))
            for n in args.workers.split(",")
        ]
        base = runs[0]
        print(
            f"backlog: {args.objects} objects (attributes + event per user), sandbox on {sandbox}"
        )
        print(
            "workers  seconds  objects/s  steady obj/s  requests/s  obj/request  RSS MB start/peak/end  vs 1 worker"
        )
        for run in runs:
            print(
                f"{run.workers:>7}  {run.seconds:7.1f}  {run.objects_per_second:9.0f}  "
                f"{run.steady_objects_per_second:12.0f}  {run.requests / run.seconds:10.0f}  "
                f"{run.objects_per_request:11.1f}  {run.rss_start:6.0f}/{run.rss_peak:.0f}/{run.rss_end:.0f}"
                f"{'':>10}x{run.objects_per_second / base.objects_per_second:.2f}"
            )
        print(
            "CPU µs per object: workers / postgres backends / sandbox  (machine: "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f});  workers 5-95 %"
        )
        for run in runs:
            per = 1e6 / run.objects
            steady = run.cpu_workers_steady * 1e6 / (run.objects * 0.9)
            print(
                f"{run.workers:>7}  {run.cpu_workers * per:6.0f} / {run.cpu_postgres * per:6.0f} / "
                f"{run.cpu_sandbox * per:6.0f}  {steady:6.1f}"
            )
        if args.emails:
            calls, total, seconds = await identity(server_url, sandbox, args.emails)
            print(
                f"identity: {args.emails} distinct unknown emails, {total} objects: "
                f"{calls} /users/export/ids calls ({calls / args.emails:.2f} per email), {seconds:.1f} s"
            )
    finally:
        sandbox_process.terminate()
        sandbox_process.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
