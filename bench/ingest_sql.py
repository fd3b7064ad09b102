"""Postgres CPU per webhook of the ingest batch statement (`events.store_events`), no HTTP.

    BRAZE_BRIDGE_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/ingest_sql.py [--batches 150] [--batch-size 64] [--no-content]

Builds bench/ingest.py's Extole `reward_fulfilled` webhooks through the real evaluate path,
writes them in batches on one connection, and reads that backend's CPU time from /proc
(Postgres on this host). `--no-content` leaves the Connected Content update out, to see its
share. A fresh database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest as bench  # the sibling bench: database and webhook helpers

from braze_bridge.db.repositories.events import (
    BATCH_SESSION_SETTINGS,
    EventRecord,
    store_events,
)
from braze_bridge.db.repositories.live_connections import fetch_live_connections
from braze_bridge.domain.json_body import parse_json_body
from braze_bridge.ingest.service import event_record
from braze_bridge.partners import PARTNERS
from braze_bridge.partners.evaluate import evaluate_body


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-content", action="store_true")
    args = parser.parse_args()
    server = os.environ.get(
        "BRAZE_BRIDGE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name, url = await bench.create_database(server)
    try:
        subprocess.run(  # noqa: S603 - our own CLI
            [str(bench.ROOT / ".venv/bin/braze-bridge"), "migrate"],
            env={
                **os.environ,
                "BRAZE_BRIDGE_DATABASE_URL": url,
                "BRAZE_BRIDGE_SECRET_KEY": bench.SECRET_KEY,
            },
            check=True,
            capture_output=True,
        )
        connection_id = await bench.seed_connection(url)
        conn = await asyncpg.connect(url)
        try:
            backend = await conn.fetchval("SELECT pg_backend_pid()")
            for name, value in BATCH_SESSION_SETTINGS.items():  # as the group committer's
                await conn.execute("SELECT set_config($1, $2, false)", name, value)
            live = (await fetch_live_connections(conn, [connection_id]))[connection_id]
            now = datetime.now(UTC)

            def record(n: int) -> EventRecord:
                body = bench.webhook_body(n)
                evaluation = evaluate_body(
                    PARTNERS[live.source],
                    live.settings,
                    parse_json_body(body),
                    received_at=now,
                    app_id=None,
                )
                made = event_record(
                    live, evaluation, body, {"content-type": "application/json"}, now
                )
                if args.no_content:
                    made.content = None
                return made

            size = args.batch_size
            batches = [[record(b * size + i) for i in range(size)] for b in range(args.batches)]
            await store_events(conn, [record(-1)])  # prepare the statement outside the clock
            cpu_before, started = bench.cpu_seconds(backend), time.perf_counter()
            for batch in batches:
                await store_events(conn, batch)
            cpu = bench.cpu_seconds(backend) - cpu_before
            wall = time.perf_counter() - started
        finally:
            await conn.close()
        webhooks = args.batches * size
        print(
            f"{webhooks} webhooks in batches of {size}"
            f"{' without content' if args.no_content else ''}: Postgres CPU "
            f"{1e6 * cpu / webhooks:.0f} µs per webhook, wall {1e6 * wall / webhooks:.0f} µs"
        )
    finally:
        await bench.drop_database(server, name)


if __name__ == "__main__":
    asyncio.run(main())
