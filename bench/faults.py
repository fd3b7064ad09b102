"""Fault harness: how many objects reach Braze more than once when things break.

    BRAZE_BRIDGE_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/faults.py [--webhooks 3000] [--workers 2] [--code DIR]

`braze-bridge api` and N `braze-bridge worker` processes of the checkout at `--code` (default:
this one) run on a fresh, migrated database; the project's sandbox plays Braze in this process,
behind a recorder that keeps every object Braze *accepted* (a 2xx answer to `/users/track`).
Signed Extole webhooks (one user each) are posted through the API while faults are injected in
phases, so each duplicate can be put down to one kind of fault:

1. `terminate`: the workers' Postgres backends are terminated every 1.5 s
   (`pg_terminate_backend`; the workers' backends are found from their sockets), and with
   `--terminate-api` the API's too, mid-ingest (a partner retries what was not answered 200);
2. `storm`: Braze answers every `/users/track` with 503 for a few seconds (`--storm-429`:
   503 and 429 in turn);
3. `kill`: a few workers are SIGKILLed (and started again at once).

Then the harness waits until no object is pending or in flight and reports: webhooks stored
(200), objects stored, delivered, lost (stored but never accepted by Braze) and duplicates
(objects Braze accepted more than once), the duplicates by the phase in which Braze first
accepted them. A worker lease of 5 s keeps a killed worker's objects from waiting long.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import uvicorn

from braze_bridge.sandbox.app import SandboxConfig, create_sandbox_app
from braze_bridge.security.webhook_auth import sign_hmac_sha256

ROOT = Path(__file__).resolve().parent.parent
SECRET = "faults-secret-key"  # noqa: S105 - a throwaway benchmark database
OPERATOR = "bbo_faults-operator-token"
PG_PORT_HEX = f"{5432:04X}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


# --- Braze: the sandbox behind a recorder of accepted objects ----------------------------------


@dataclass
class Recorder:
    """Counts each object of each accepted `/users/track` request, and when it was first seen."""

    started: float = field(default_factory=time.monotonic)
    storm: bool = False
    storm_429: bool = False
    accepted: Counter[str] = field(default_factory=Counter)
    first_seen: dict[str, float] = field(default_factory=dict)
    stormed_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, body: bytes) -> None:
        try:
            document = json.loads(body)
        except ValueError:
            return
        now = time.monotonic() - self.started
        with self.lock:
            for array in ("attributes", "events", "purchases"):
                for obj in document.get(array) or ():
                    key = array + json.dumps(obj, sort_keys=True)
                    self.accepted[key] += 1
                    self.first_seen.setdefault(key, now)


def recording(app: Any, recorder: Recorder) -> Any:
    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/users/track":
            await app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if recorder.storm:
            recorder.stormed_requests += 1
            limited = recorder.storm_429 and recorder.stormed_requests % 2 == 0
            payload = (
                b'{"message":"Too Many Requests (fault harness storm)"}'
                if limited
                else b'{"message":"Service Unavailable (fault harness storm)"}'
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 429 if limited else 503,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return
        status: list[int] = []
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await app(scope, replay, watch)
        if status and 200 <= status[0] < 300:
            recorder.record(body)

    return asgi


def start_braze(recorder: Recorder, latency_ms: float) -> tuple[str, uvicorn.Server]:
    port = free_port()
    config = SandboxConfig(
        track_limit_per_3s=1_000_000, latency_ms=latency_ms, max_logged_requests=10, seed=7
    )
    app = recording(create_sandbox_app(config), recorder)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the sandbox did not start")
        time.sleep(0.05)  # waiting for a thread's server to bind, not synchronising work
    return f"http://127.0.0.1:{port}", server


# --- the service under test -----------------------------------------------------------------


def service_env(code: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAZE_BRIDGE_")}
    env.update(
        PYTHONPATH=str(code / "src"),
        BRAZE_BRIDGE_DATABASE_URL=url,
        BRAZE_BRIDGE_SECRET_KEY=SECRET,
        BRAZE_BRIDGE_BOOTSTRAP_TOKEN=OPERATOR,
        BRAZE_BRIDGE_ALLOW_ANY_BRAZE_URL="true",
        BRAZE_BRIDGE_LOG_LEVEL="warning",
        BRAZE_BRIDGE_WORKER_LEASE_SECONDS="5",
        BRAZE_BRIDGE_WORKER_POLL_SECONDS="0.5",
        **extra,
    )
    return env


def spawn(code: Path, url: str, command: str, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(  # noqa: S603 - this project's own CLI
            [sys.executable, "-m", "braze_bridge", command],
            env=service_env(code, url, **extra),
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )


def backend_ports(pids: list[int]) -> list[int]:
    """Local TCP ports of the given processes' connections to Postgres (port 5432)."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and remote.endswith(":" + PG_PORT_HEX):
                ports.append(int(local.rsplit(":", 1)[1], 16))
    return ports


@dataclass
class Faults:
    log: list[tuple[float, str]] = field(default_factory=list)
    terminated_backends: int = 0


async def terminate_loop(
    db: asyncpg.Connection,
    victims: Callable[[], list[subprocess.Popen[bytes]]],
    faults: Faults,
    started: float,
    until: float,
    every: float,
) -> None:
    """`victims()` is asked at each round: a killed and restarted worker is found again."""
    while time.monotonic() - started < until:
        await asyncio.sleep(every)
        ports = backend_ports([p.pid for p in victims() if p.poll() is None])
        if not ports:
            continue
        killed = await db.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND client_port = ANY($1::int[])",
            ports,
        )
        faults.terminated_backends += killed or 0
        faults.log.append((time.monotonic() - started, "terminate"))


async def storm_phase(
    recorder: Recorder, faults: Faults, started: float, at: float, seconds: float
) -> None:
    await asyncio.sleep(max(0.0, at - (time.monotonic() - started)))
    recorder.storm = True
    faults.log.append((time.monotonic() - started, "storm"))
    await asyncio.sleep(seconds)
    recorder.storm = False


async def kill_phase(
    workers: list[subprocess.Popen[bytes]],
    respawn: Any,
    faults: Faults,
    started: float,
    at: float,
    kills: int,
    every: float,
    rng: random.Random,
) -> None:
    for n in range(kills):
        await asyncio.sleep(max(0.0, at + n * every - (time.monotonic() - started)))
        index = rng.randrange(len(workers))
        victim = workers[index]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        faults.log.append((time.monotonic() - started, "kill"))
        workers[index] = respawn()


# --- webhooks ---------------------------------------------------------------------------------


def webhook_body(run: str, n: int) -> bytes:
    body = {
        "type": "reward_fulfilled",
        "event_id": f"{run}-{n}",
        "event_time": "2026-11-20T12:00:00.000Z",
        "reward_id": f"reward-{run}-{n}",
        "reward_supplier_name": "Friend 20% Coupon",
        "reward_supplier_id": "701e681a9e46c8b6778f3453",
        "reward_supplier_type": "MANUAL_COUPON",
        "person_id": f"person-{run}-{n}",
        "partner_user_id": f"user-{run}-{n}",
        "face_value": 20,
        "face_value_type": "PERCENT_OFF",
        "partner_reward_id": f"CODE-{n}",
        "data": {},
        "message": None,
        "schema_version": 1,
    }
    return json.dumps(body).encode()


async def send_webhooks(
    api: str, connection: dict[str, Any], count: int, seconds: float, run: str
) -> tuple[int, int]:
    """Posts `count` webhooks spread over `seconds`; a failed post is retried as a partner
    would (up to 10 times). Returns (answered 200, given up)."""
    url = f"{api}/v1/hooks/{connection['id']}"
    secret = connection["webhook_secret"]
    ok = given_up = 0
    gate = asyncio.Semaphore(16)
    started = time.monotonic()

    async def one(client: httpx.AsyncClient, n: int) -> None:
        nonlocal ok, given_up
        await asyncio.sleep(max(0.0, started + n * seconds / count - time.monotonic()))
        content = webhook_body(run, n)
        headers = {
            "Content-Type": "application/json",
            "X-Extole-Signature": sign_hmac_sha256(secret, content),
        }
        async with gate:
            for _ in range(10):
                try:
                    response = await client.post(url, content=content, headers=headers)
                except httpx.TransportError:
                    continue
                if response.status_code == 200:
                    ok += 1
                    return
            given_up += 1

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(one(client, n) for n in range(count)))
    return ok, given_up


# --- one run ------------------------------------------------------------------------------------


async def wait_ready(api: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"api exited with {process.returncode}")
            try:
                if (await client.get(f"{api}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("api not ready within 60 s")


async def make_connection(api: str, braze: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {OPERATOR}"}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as client:
        tenant = await client.post(
            "/v1/tenants", json={"name": "Faults", "slug": f"faults-{uuid.uuid4().hex[:6]}"}
        )
        tenant.raise_for_status()
        made = await client.post(
            "/v1/connections",
            json={
                "tenant_id": tenant.json()["id"],
                "name": "faults",
                "source": "extole",
                "braze": {"rest_endpoint": braze, "api_key": f"faults-{uuid.uuid4()}"},
                "settings": {"reward_states": ["FULFILLED"]},
            },
        )
        made.raise_for_status()
        created: dict[str, Any] = made.json()
        return created


def phase_of(at: float, storm_at: float, kill_at: float) -> str:
    if at < storm_at:
        return "terminate"
    if at < kill_at:
        return "storm"
    return "kill"


def cause_of(first_accepted: float, log: list[tuple[float, str]]) -> str:
    """The first fault after Braze first accepted the object: the one that struck while its
    answer was being recorded (a backend terminated, a worker killed) or a storm begun."""
    for at, kind in log:
        if at >= first_accepted - 0.1:
            return kind
    return "none"


async def run_once(args: argparse.Namespace, code: Path, label: str) -> dict[str, Any]:
    server_url = os.environ["BRAZE_BRIDGE_TEST_DATABASE_URL"].replace("+asyncpg", "")
    name = f"bb_faults_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = with_db(server_url, name)
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{label}-{name}.log"
    migrated = subprocess.run(
        [sys.executable, "-m", "braze_bridge", "migrate"],
        env=service_env(code, url),
        capture_output=True,
        check=False,
    )
    if migrated.returncode != 0:
        raise SystemExit(migrated.stderr.decode()[-2000:])

    recorder = Recorder(storm_429=args.storm_429)
    braze, braze_server = start_braze(recorder, args.latency_ms)
    api_port = free_port()
    api = f"http://127.0.0.1:{api_port}"
    api_process = spawn(code, url, "api", log, BRAZE_BRIDGE_PORT=str(api_port))
    workers: list[subprocess.Popen[bytes]] = []
    db = await asyncpg.connect(url)
    try:
        await wait_ready(api, api_process)
        connection = await make_connection(api, braze)
        workers.extend(spawn(code, url, "worker", log) for _ in range(args.workers))
        faults = Faults()
        rng = random.Random(args.seed)
        storm_at = args.terminate_seconds + 2  # gaps keep one phase's effects out of the next
        kill_at = storm_at + args.storm_seconds + 2
        started = recorder.started = time.monotonic()
        sent_task = asyncio.create_task(
            send_webhooks(api, connection, args.webhooks, args.send_seconds, name)
        )
        api_victim = [api_process] if args.terminate_api else []
        await asyncio.gather(
            terminate_loop(
                db,
                lambda: [*workers, *api_victim],
                faults,
                started,
                args.terminate_seconds,
                args.terminate_every,
            ),
            storm_phase(recorder, faults, started, storm_at, args.storm_seconds),
            kill_phase(
                workers,
                lambda: spawn(code, url, "worker", log),
                faults,
                started,
                kill_at,
                args.kills,
                args.kill_every,
                rng,
            ),
        )
        ok, given_up = await sent_task
        sent_seconds = time.monotonic() - started
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            open_ = await db.fetchval(
                "SELECT count(*) FROM operations WHERE status IN ('pending', 'in_flight', 'failed')"
            )
            if open_ == 0:
                break
            await asyncio.sleep(0.5)
        drained = time.monotonic() - started
        statuses = dict(
            await db.fetch("SELECT status, count(*) FROM operations GROUP BY status")  # type: ignore[arg-type]
        )
        events = await db.fetchval("SELECT count(*) FROM events")
    finally:
        for process in [*workers, api_process]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*workers, api_process]:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        await db.close()
        braze_server.should_exit = True
        admin = await asyncpg.connect(server_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    objects = sum(statuses.values())
    distinct = len(recorder.accepted)
    duplicated = {k: n for k, n in recorder.accepted.items() if n > 1}
    by_phase: Counter[str] = Counter(
        phase_of(recorder.first_seen[k], storm_at, kill_at) for k in duplicated
    )
    log_sorted = sorted(faults.log)
    by_cause: Counter[str] = Counter(
        cause_of(recorder.first_seen[k], log_sorted) for k in duplicated
    )
    faults_by_kind = Counter(kind for _, kind in faults.log)
    return {
        "code": label,
        "webhooks": args.webhooks,
        "stored": ok,
        "given_up": given_up,
        "events": events,
        "objects": objects,
        "delivered": statuses.get("delivered", 0),
        "statuses": statuses,
        "accepted_distinct": distinct,
        "lost": objects - distinct,
        "duplicates": len(duplicated),
        "extra_sends": sum(n - 1 for n in duplicated.values()),
        "duplicates_by_phase": {k: by_phase.get(k, 0) for k in ("terminate", "storm", "kill")},
        "duplicates_by_next_fault": dict(by_cause),
        "faults": {
            "terminate_rounds": faults_by_kind["terminate"],
            "backends_terminated": faults.terminated_backends,
            "storm_503s": recorder.stormed_requests,
            "worker_kills": faults_by_kind["kill"],
        },
        "seconds": {"sending": round(sent_seconds, 1), "drained_at": round(drained, 1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhooks", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--send-seconds", type=float, default=50.0)
    parser.add_argument("--terminate-seconds", type=float, default=25.0)
    parser.add_argument("--terminate-every", type=float, default=1.5)
    parser.add_argument(
        "--terminate-api", action="store_true", help="also terminate the API's backends"
    )
    parser.add_argument("--storm-seconds", type=float, default=6.0)
    parser.add_argument("--storm-429", action="store_true", help="storm with 503 and 429")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=5.0)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="Braze's answer delay")
    parser.add_argument("--drain-timeout", type=float, default=90.0)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument(
        "--code",
        action="append",
        default=[],
        help="checkout whose api and workers run (repeat to alternate; default: this one)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs per checkout, alternating")
    parser.add_argument("--logs", default=str(ROOT / "bench" / ".faults-logs"))
    args = parser.parse_args()
    codes = [Path(c).resolve() for c in args.code] or [ROOT]
    results = []
    for round_ in range(args.rounds):
        for code in codes:
            label = f"{code.name}#{round_ + 1}"
            result = asyncio.run(run_once(args, code, label))
            results.append(result)
            print(json.dumps(result), flush=True)
    print(
        "\ncode | stored | objects | delivered | lost | duplicates by phase (terminate/storm/kill)"
    )
    for r in results:
        phases = r["duplicates_by_phase"]
        print(
            f"{r['code']} | {r['stored']}/{r['webhooks']} | {r['objects']} | {r['delivered']} | "
            f"{r['lost']} | {r['duplicates']} ({phases['terminate']}/{phases['storm']}/"
            f"{phases['kill']})"
        )


if __name__ == "__main__":
    main()
