"""The console's 24 h chart (GET /v1/connections/{id}/stats) at 1M events a day.

Usage: .venv/bin/python bench/stats.py [EVENTS]   (default 1,000,000)
Needs BRAZE_BRIDGE_TEST_DATABASE_URL (a Postgres server; a scratch database is created and
dropped). Seeds EVENTS webhooks spread over the last 24 h on one connection, one Braze object
each, sent 50 to an attempt (about 2 % 429, 2 % 5xx, 1 % no answer; 0.5 % of objects failed,
0.5 % dead), then times, in the same command:

- baseline: every hour counted live from the logs (plain indexed aggregates, no rollup);
- first read: what the endpoint does with an empty rollup (counts the 23 closed hours once,
  stores them, counts the open hour live);
- later reads: the rollup plus the open hour live (what every read after the first costs).
Prints the median milliseconds of each and the baseline / later-read ratio.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from braze_bridge.db import migrate
from braze_bridge.db.engine import create_engine, create_sessionmaker
from braze_bridge.db.repositories import stats as stats_repo
from braze_bridge.domain.principal import Principal
from braze_bridge.ops import stats as stats_service
from braze_bridge.ops.stats import HOUR, hour_floor

REPEAT = 7
PER_ATTEMPT = 50
OPERATOR = Principal(token_id=uuid.uuid4(), tenant_id=None)


def database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def seed(dsn: str, events: int, now: datetime) -> uuid.UUID:
    conn = await asyncpg.connect(dsn)
    try:
        tenant, connection = uuid.uuid4(), uuid.uuid4()
        await conn.execute("INSERT INTO tenants (id, slug, name) VALUES ($1, 'bench', 'B')", tenant)
        await conn.execute(
            """INSERT INTO connections (id, tenant_id, name, source, state, braze_rest_endpoint,
                   braze_api_key_enc, braze_api_key_last4, webhook_auth_mode, webhook_secret_enc,
                   settings)
               VALUES ($1, $2, 'bench', 'extole', 'active', 'https://rest.iad-01.braze.com',
                   'x', 'abcd', 'hmac_sha256', 'x', '{}')""",
            connection,
            tenant,
        )
        start_ms = int((now - timedelta(hours=24)).timestamp() * 1000)
        step = 86_400_000 / events
        # UUIDv7 ids carrying their arrival millisecond, as ingest mints them.
        await conn.execute(
            """
            INSERT INTO events (id, tenant_id, connection_id, dedupe_key, kind, status, user_key,
                                received_at)
            SELECT (lpad(to_hex(ms), 12, '0') || '7' || substr(md5(g::text), 1, 3) || '8'
                    || substr(md5(g::text), 4, 15))::uuid,
                   $1, $2, 'k' || g, 'reward_fulfilled', 'delivered', 'id:user-' || (g % 50000),
                   to_timestamp(ms / 1000.0)
            FROM generate_series(0, $3::int - 1) AS g,
                 LATERAL (SELECT ($4::bigint + floor(g * $5::float8))::bigint AS ms) AS t
            """,
            tenant,
            connection,
            events,
            start_ms,
            step,
        )
        await conn.execute(
            """
            INSERT INTO delivery_attempts (id, tenant_id, connection_id, endpoint, worker_id,
                                           status_code, duration_ms, started_at)
            SELECT a, $1, $2, '/users/track', 'w1',
                   CASE WHEN a % 100 < 2 THEN 429 WHEN a % 100 < 4 THEN 503
                        WHEN a % 100 < 5 THEN NULL ELSE 201 END,
                   40, to_timestamp(($3::bigint + floor(a * $4::float8 * $5)) / 1000.0 + 1)
            FROM generate_series(0, $6::int - 1) AS a
            """,
            tenant,
            connection,
            start_ms,
            step,
            PER_ATTEMPT,
            events // PER_ATTEMPT,
        )
        await conn.execute(
            """
            INSERT INTO attempt_operations (attempt_id, operation_id, outcome)
            SELECT g / $1, g,
                   CASE WHEN (g / $1) % 100 < 2 THEN 'rate_limited'
                        WHEN (g / $1) % 100 < 5 THEN 'retry'
                        WHEN g % 200 = 7 THEN 'failed' WHEN g % 200 = 9 THEN 'dead'
                        ELSE 'delivered' END
            FROM generate_series(0, $2::int - 1) AS g
            """,
            PER_ATTEMPT,
            (events // PER_ATTEMPT) * PER_ATTEMPT,
        )
        # What autovacuum does to a table this size: statistics and the visibility map.
        for table in ("events", "delivery_attempts", "attempt_operations"):
            await conn.execute(f"VACUUM ANALYZE {table}")
        return connection
    finally:
        await conn.close()


async def main(events: int) -> None:
    server = os.environ.get("BRAZE_BRIDGE_TEST_DATABASE_URL")
    if not server:
        sys.exit("set BRAZE_BRIDGE_TEST_DATABASE_URL to a Postgres server")
    name = f"bb_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = database(server, name)
    now = datetime.now(UTC)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        started = time.perf_counter()
        connection = await seed(url, events, now)
        print(f"seeded {events:,} events over 24 h in {time.perf_counter() - started:.1f} s")
        engine = create_engine(url, pool_size=2)
        sessionmaker = create_sessionmaker(engine)
        hours = [hour_floor(now) + HOUR - (24 - i) * HOUR for i in range(24)]

        async def baseline() -> int:
            async with sessionmaker() as session:
                counted = await stats_repo.count_hours(session, connection, hours)
            return sum(c.received for c in counted)

        async def endpoint() -> int:
            async with sessionmaker() as session:
                stats = await stats_service.connection_stats(
                    session, OPERATOR, connection, hours=24, now=now
                )
            return sum(b.received for b in stats.buckets)

        samples: dict[str, list[float]] = {"baseline": [], "later": []}
        t0 = time.perf_counter()
        first_total = await endpoint()
        first_ms = (time.perf_counter() - t0) * 1000
        totals = set()
        for _ in range(REPEAT):  # alternate, so machine load hits both alike
            for label, fn in (("baseline", baseline), ("later", endpoint)):
                t0 = time.perf_counter()
                totals.add(await fn())
                samples[label].append((time.perf_counter() - t0) * 1000)
        assert totals == {first_total}, (totals, first_total)
        base = statistics.median(samples["baseline"])
        later = statistics.median(samples["later"])
        print(f"webhooks counted: {first_total:,}")
        print(f"baseline, 24 hours counted live:   {base:8.1f} ms")
        print(f"first read (fills the rollup):     {first_ms:8.1f} ms")
        print(f"later reads (rollup + open hour):  {later:8.1f} ms")
        print(f"baseline / later read:             {base / later:8.1f}x")
        await engine.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
