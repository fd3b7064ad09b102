"""Identity benchmark: N distinct email-only users in each identity mode.

    BRAZE_BRIDGE_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/identity.py [--users 2000]

For each mode (`email`, `lookup_then_alias`) and a baseline of the same users with external
ids, on a fresh database: N users, each an attributes object then an event (what an Extole
webhook gives), drained by one in-process worker into the in-process Braze sandbox. Then the
same N people arrive again with an external id (one event each), which asks for one identify
per user. Printed per mode: Braze calls per user (track, export/ids, identify), objects per
track request, and the drain rate of the first phase with its ratio to the external-id
baseline. Budgets are lifted in both the connection and the sandbox so the figures show
calls and CPU, not Braze's limits; the line under the table says what Braze's export/ids
budget (250 a minute on newer workspaces) would add to the lookup mode.

Goal (issue 14): `email` needs 0 export/ids calls and no more /users/track requests than the
baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from braze_bridge.db import migrate
from braze_bridge.delivery.retry import RetryPolicy
from braze_bridge.delivery.worker import DeliveryWorker, WorkerOptions
from braze_bridge.sandbox.app import SandboxConfig, create_sandbox_app
from braze_bridge.security.secrets import SecretBox

SECRET = "bench-secret-key"  # noqa: S105 - a throwaway benchmark database
ENDPOINT = "https://rest.iad-01.braze.com"
# How each run stores its users' mode on the operations (`operations.unknown_user`).
MODES = {"external_id (baseline)": None, "email": "email", "lookup_then_alias": "alias"}


def with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@dataclass
class Result:
    mode: str
    users: int
    objects: int
    seconds: float
    track: int
    export: int
    identify: int
    identify_seconds: float

    def per_user(self, calls: int) -> float:
        return calls / self.users


async def load(
    db: asyncpg.Connection, connection: uuid.UUID, tenant: uuid.UUID, users: int, mode: str | None
) -> None:
    """Per user an attributes object and an event, by email (or by external id: baseline)."""
    await db.execute(
        """
INSERT INTO events (id, tenant_id, connection_id, dedupe_key, status, kind)
SELECT gen_random_uuid(), $1, $2, 'bench-' || g, 'queued', 'bench' FROM generate_series(1, $3) g
""",
        tenant,
        connection,
        users,
    )
    await db.execute(
        """
INSERT INTO operations (event_id, tenant_id, connection_id, position, kind, user_key,
                        external_id, email, unknown_user, status, payload)
SELECT e.id, e.tenant_id, e.connection_id, p.pos, p.kind,
       CASE WHEN $2::text IS NULL THEN 'id:u' || e.n ELSE 'email:p' || e.n || '@example.com' END,
       CASE WHEN $2::text IS NULL THEN 'u' || e.n END,
       'p' || e.n || '@example.com', coalesce($2, 'alias'), 'pending',
       CASE WHEN p.kind = 'attributes'
            THEN jsonb_build_object('email', 'p' || e.n || '@example.com', 'first_name', 'P')
            ELSE jsonb_build_object('name', 'extole_shared', 'time', '2026-01-01T00:00:00Z')
       END
FROM (SELECT id, tenant_id, connection_id, substr(dedupe_key, 7)::int AS n FROM events
      WHERE connection_id = $1) e
CROSS JOIN (VALUES (0, 'attributes'), (1, 'events')) AS p(pos, kind)
ORDER BY e.n, p.pos
""",
        connection,
        mode,
    )


async def load_identified(
    db: asyncpg.Connection, connection: uuid.UUID, tenant: uuid.UUID, users: int
) -> None:
    """The same people again, now with an external id: one event each."""
    await db.execute(
        """
INSERT INTO events (id, tenant_id, connection_id, dedupe_key, status, kind)
SELECT gen_random_uuid(), $1, $2, 'again-' || g, 'queued', 'bench' FROM generate_series(1, $3) g
""",
        tenant,
        connection,
        users,
    )
    await db.execute(
        """
INSERT INTO operations (event_id, tenant_id, connection_id, position, kind, user_key,
                        external_id, email, unknown_user, status, payload)
SELECT e.id, e.tenant_id, e.connection_id, 0, 'events', 'id:u' || e.n, 'u' || e.n,
       'p' || e.n || '@example.com', 'alias', 'pending',
       jsonb_build_object('name', 'extole_converted', 'time', '2026-01-02T00:00:00Z')
FROM (SELECT id, tenant_id, connection_id, substr(dedupe_key, 7)::int AS n FROM events
      WHERE connection_id = $1 AND dedupe_key LIKE 'again-%') e
""",
        connection,
    )


async def drain(worker: DeliveryWorker) -> None:
    while await worker.claim_and_deliver_once():
        pass


async def run_mode(server_url: str, label: str, mode: str | None, users: int) -> Result:
    name = f"bb_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = with_db(server_url, name)
    await asyncio.to_thread(migrate.upgrade, url)
    db = await asyncpg.connect(url)
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        box = SecretBox(SECRET)
        tenant, connection = uuid.uuid4(), uuid.uuid4()
        await db.execute(
            "INSERT INTO tenants (id, slug, name) VALUES ($1, $2, 'Bench')", tenant, name
        )
        await db.execute(
            """
INSERT INTO connections (id, tenant_id, name, source, state, braze_rest_endpoint,
    braze_api_key_enc, braze_api_key_last4, webhook_auth_mode, webhook_secret_enc, settings,
    track_rate_limit, track_rate_window_seconds, export_rate_limit, export_rate_window_seconds)
VALUES ($1, $2, 'bench', 'extole', 'active', $3, $4, 'ench', 'hmac_sha256', $5, '{}',
        1000000, 3, 1000000, 60)
""",
            connection,
            tenant,
            ENDPOINT,
            box.encrypt("bench-key"),
            box.encrypt("whsec"),
        )
        await load(db, connection, tenant, users, mode)
        app = create_sandbox_app(
            SandboxConfig(
                seed=1,
                export_limit_per_minute=10_000_000,
                track_limit_per_3s=10_000_000,
                max_logged_requests=100,
            )
        )
        sandbox = app.state.sandbox
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=ENDPOINT
        ) as http:
            worker = DeliveryWorker(
                sessionmaker,
                http,
                box,
                options=WorkerOptions(
                    lease_seconds=60.0,
                    poll_seconds=0.05,
                    linger_ms=0,
                    retry=RetryPolicy(horizon_seconds=86_400),
                    lanes=1,
                ),
                worker_id="bench",
                clock=lambda: datetime.now(UTC),
            )
            started = time.perf_counter()
            await drain(worker)
            seconds = time.perf_counter() - started
            track = sandbox.counts["/users/track 201"]
            export = sandbox.counts["/users/export/ids 201"]
            await load_identified(db, connection, tenant, users)
            started = time.perf_counter()
            await drain(worker)
            identify_seconds = time.perf_counter() - started
        left = await db.fetchval("SELECT count(*) FROM operations WHERE status <> 'delivered'")
        if left:
            raise SystemExit(f"{label}: {left} operations not delivered")
        return Result(
            label,
            users,
            users * 2,
            seconds,
            track,
            export,
            sandbox.counts["/users/identify 201"],
            identify_seconds,
        )
    finally:
        await db.close()
        await engine.dispose()
        admin = await asyncpg.connect(server_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()
    server_url = os.environ["BRAZE_BRIDGE_TEST_DATABASE_URL"]
    results = [await run_mode(server_url, label, mode, args.users) for label, mode in MODES.items()]
    base = results[0]
    print(f"{args.users} distinct users, an attributes object and an event each; then each again")
    print("with an external id (one event). Braze calls per user, first phase unless noted:")
    print(
        f"{'mode':24} {'track':>6} {'export':>7} {'identify*':>9} {'obj/req':>7} "
        f"{'objects/s':>9} {'vs base':>7} {'phase 2 s':>9}"
    )
    for r in results:
        print(
            f"{r.mode:24} {r.per_user(r.track):6.3f} {r.per_user(r.export):7.3f} "
            f"{r.per_user(r.identify):9.3f} {r.objects / max(1, r.track):7.1f} "
            f"{r.objects / r.seconds:9.0f} {(r.objects / r.seconds) / (base.objects / base.seconds):7.2f} "
            f"{r.identify_seconds:9.2f}"
        )
    print("* /users/identify requests per user, second phase (up to 50 users per request)")
    lookup = results[2]
    print(
        f"at Braze's export/ids budget of 250 a minute, lookup_then_alias's {lookup.export} "
        f"lookups alone take at least {lookup.export / 250:.1f} minutes; email mode needs none"
    )
    email = results[1]
    assert email.export == 0, "email mode made export/ids calls"
    assert email.track <= lookup.track, "email mode sent more track requests"


if __name__ == "__main__":
    asyncio.run(main())
