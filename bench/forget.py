"""Forget cost against the size of a connection's retained history (docs/privacy.md).

Usage: .venv/bin/python bench/forget.py [ROWS ...]   (default 10000 100000)
Needs BRAZE_BRIDGE_TEST_DATABASE_URL (a Postgres server; one scratch database per size is
created and dropped). Each size seeds ROWS events of distinct users, each with a raw body, two
objects and a share of a 75-object attempt, then forgets one person (linking, cancelling,
deleting, redacting in one transaction). Prints milliseconds per forget and the ratio to the
first size: a forget walks the connection's history, so it grows with it.
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
from braze_bridge.db.repositories import forget as forget_repo
from braze_bridge.domain.privacy import Person

REPEAT = 3


def database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def seed(dsn: str, rows: int) -> tuple[uuid.UUID, uuid.UUID]:
    conn = await asyncpg.connect(dsn)
    try:
        tenant, connection = uuid.uuid4(), uuid.uuid4()
        await conn.execute(
            "INSERT INTO tenants (id, slug, name) VALUES ($1, 'bench', 'Bench')", tenant
        )
        await conn.execute(
            """INSERT INTO connections (id, tenant_id, name, source, state, braze_rest_endpoint,
                   braze_api_key_enc, braze_api_key_last4, webhook_auth_mode, webhook_secret_enc,
                   settings)
               VALUES ($1, $2, 'bench', 'extole', 'active', 'https://rest.iad-01.braze.com',
                   'x', 'abcd', 'hmac_sha256', 'x', '{}')""",
            connection,
            tenant,
        )
        await conn.execute(
            """
            INSERT INTO events (id, tenant_id, connection_id, dedupe_key, kind, status, user_key,
                                normalized)
            SELECT md5('e' || g)::uuid, $1, $2, 'event:' || g, 'reward', 'delivered',
                   'id:user-' || g,
                   jsonb_build_object('kind', 'reward', 'user', jsonb_build_object(
                       'external_id', 'user-' || g, 'email', 'user' || g || '@example.com'),
                       'first_name', 'Name ' || g)
            FROM generate_series(1, $3) AS g
            """,
            tenant,
            connection,
            rows,
        )
        await conn.execute(
            """
            INSERT INTO event_bodies (event_id, body, headers)
            SELECT md5('e' || g)::uuid,
                   convert_to(jsonb_build_object('partner_user_id', 'user-' || g,
                       'email', 'user' || g || '@example.com', 'type', 'reward_fulfilled')::text,
                       'UTF8'),
                   '{}'
            FROM generate_series(1, $1) AS g
            """,
            rows,
        )
        await conn.execute(
            """
            INSERT INTO operations (event_id, tenant_id, connection_id, position, kind, user_key,
                                    external_id, email, payload, status, sent_object)
            SELECT md5('e' || g)::uuid, $1, $2, p, CASE p WHEN 0 THEN 'attributes' ELSE 'events' END,
                   'id:user-' || g, 'user-' || g, 'user' || g || '@example.com',
                   jsonb_build_object('email', 'user' || g || '@example.com'), 'delivered',
                   jsonb_build_object('external_id', 'user-' || g)
            FROM generate_series(1, $3) AS g, generate_series(0, 1) AS p
            """,
            tenant,
            connection,
            rows,
        )
        # One /users/track attempt per 37 users (75 objects with their two each, roughly).
        await conn.execute(
            """
            INSERT INTO delivery_attempts (tenant_id, connection_id, endpoint, request_body,
                                           status_code, response_body, duration_ms)
            SELECT $1, $2, '/users/track',
                   jsonb_build_object('attributes', jsonb_agg(jsonb_build_object(
                       'external_id', 'user-' || g, 'email', 'user' || g || '@example.com'))),
                   201, '{"message":"success"}', 5.0
            FROM generate_series(1, $3) AS g GROUP BY g / 37
            """,
            tenant,
            connection,
            rows,
        )
        await conn.execute("ANALYZE")
        return connection, tenant
    finally:
        await conn.close()


async def forget_ms(url: str, connection: uuid.UUID, tenant: uuid.UUID, n: int) -> float:
    engine = create_engine(url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            started = time.perf_counter()
            person = await forget_repo.linked_person(
                session, connection, Person.of(email=f"user{n}@example.com")
            )
            counts = await forget_repo.erase_person(session, connection, tenant, person)
            await session.commit()
            elapsed = (time.perf_counter() - started) * 1000
            assert counts["events_redacted"] == 1, counts
            return elapsed
    finally:
        await engine.dispose()


async def server_execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def measure(server: str, rows: int) -> float:
    name = f"bb_bench_forget_{uuid.uuid4().hex[:8]}"
    await server_execute(server, f'CREATE DATABASE "{name}"')
    try:
        url = database(server, name)
        await asyncio.to_thread(migrate.upgrade, url)
        connection, tenant = await seed(url.replace("postgresql+asyncpg://", "postgresql://"), rows)
        times = [await forget_ms(url, connection, tenant, rows // 2 + i) for i in range(REPEAT)]
        return statistics.median(times)
    finally:
        await server_execute(server, f'DROP DATABASE "{name}" WITH (FORCE)')


async def main(sizes: list[int]) -> None:
    server = os.environ["BRAZE_BRIDGE_TEST_DATABASE_URL"]
    results = [(rows, await measure(server, rows)) for rows in sizes]
    base = results[0][1]
    for rows, ms in results:
        print(f"rows={rows:>9,}  forget={ms:8.1f} ms  ratio vs {sizes[0]:,}: {ms / base:5.1f}x")


if __name__ == "__main__":
    asyncio.run(main([int(a) for a in sys.argv[1:]] or [10_000, 100_000]))
