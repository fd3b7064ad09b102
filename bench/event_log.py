"""Event log page cost on a large table: keyset cursor (what GET /v1/events does) vs OFFSET.

Usage: .venv/bin/python bench/event_log.py [ROWS]   (default 1,000,000)
Needs BRAZE_BRIDGE_TEST_DATABASE_URL (a Postgres server; a scratch database is created and
dropped). Prints milliseconds per page at several depths and the OFFSET/keyset ratio.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from braze_bridge.db import migrate
from braze_bridge.db.engine import create_engine, create_sessionmaker
from braze_bridge.db.repositories import event_log
from braze_bridge.db.repositories.event_log import EventFilter
from braze_bridge.domain.statuses import EventStatus

PAGE = 50
REPEAT = 5


def database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def seed(dsn: str, rows: int) -> tuple[uuid.UUID, uuid.UUID]:
    conn = await asyncpg.connect(dsn)
    try:
        tenant = uuid.uuid4()
        connection = uuid.uuid4()
        await conn.execute(
            "INSERT INTO tenants (id, slug, name) VALUES ($1, 'bench', 'Bench')", tenant
        )
        await conn.execute(
            """INSERT INTO connections (id, tenant_id, name, source, state, braze_rest_endpoint,
                   braze_api_key_enc, braze_api_key_last4, webhook_auth_mode, webhook_secret_enc, settings)
               VALUES ($1, $2, 'bench', 'extole', 'active', 'https://rest.iad-01.braze.com',
                   'x', 'abcd', 'hmac_sha256', 'x', '{}')""",
            connection,
            tenant,
        )
        # UUIDv7-shaped ids in arrival order: 48-bit ms timestamp, version 7, random tail.
        await conn.execute(
            """
            INSERT INTO events (id, tenant_id, connection_id, dedupe_key, kind, status, user_key, received_at)
            SELECT (lpad(to_hex((1700000000000 + g * 10)::bigint), 12, '0')
                    || '7' || substr(md5(g::text), 1, 3) || '8' || substr(md5(g::text), 4, 15))::uuid,
                   $1, $2, 'k' || g, 'reward_fulfilled',
                   CASE WHEN g % 200 = 0 THEN 'dead' ELSE 'delivered' END,
                   'id:user-' || (g % 50000),
                   to_timestamp((1700000000000 + g * 10) / 1000.0)
            FROM generate_series(1, $3::int) AS g
            """,
            tenant,
            connection,
            rows,
        )
        await conn.execute("ANALYZE events")
        return tenant, connection
    finally:
        await conn.close()


async def timed(fn) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def main(rows: int) -> None:
    server = os.environ.get("BRAZE_BRIDGE_TEST_DATABASE_URL")
    if not server:
        sys.exit("set BRAZE_BRIDGE_TEST_DATABASE_URL to a Postgres server")
    name = f"bb_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = database(server, name)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        started = time.perf_counter()
        tenant, connection = await seed(url, rows)
        print(f"seeded {rows:,} events in {time.perf_counter() - started:.1f} s")
        engine = create_engine(url, pool_size=2)
        sessionmaker = create_sessionmaker(engine)
        raw = await asyncpg.connect(url)
        try:
            print(f"{'depth':>10} {'keyset ms':>10} {'OFFSET ms':>10} {'ratio':>7}")
            for depth in (0, rows // 10, rows // 2, rows - PAGE * 2):
                cursor_id = await raw.fetchval(
                    "SELECT id FROM events WHERE tenant_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1",
                    tenant,
                    max(depth - 1, 0),
                )

                async def keyset(before: uuid.UUID | None = cursor_id if depth else None) -> None:
                    async with sessionmaker() as session:
                        await event_log.list_events(
                            session, tenant, EventFilter(), before=before, limit=PAGE
                        )

                async def offset(skip: int = depth) -> None:
                    await raw.fetch(
                        "SELECT id, connection_id, source_event_id, kind, status, reason, user_key, received_at "
                        "FROM events WHERE tenant_id = $1 ORDER BY id DESC OFFSET $2 LIMIT $3",
                        tenant,
                        skip,
                        PAGE + 1,
                    )

                k, o = await timed(keyset), await timed(offset)
                print(f"{depth:>10,} {k:>10.2f} {o:>10.2f} {o / k:>6.1f}x")
            for label, filters in (
                ("status=dead", EventFilter(status=EventStatus.DEAD)),
                ("user=user-42", EventFilter(user="user-42")),
                (
                    "connection+status",
                    EventFilter(connection_id=connection, status=EventStatus.DEAD),
                ),
            ):

                async def filtered(f: EventFilter = filters) -> None:
                    async with sessionmaker() as session:
                        await event_log.list_events(session, tenant, f, before=None, limit=PAGE)

                print(f"first page {label:<20} {await timed(filtered):8.2f} ms")
        finally:
            await raw.close()
            await engine.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
