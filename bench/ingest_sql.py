"""Postgres CPU per webhook of the ingest batch statement (`ingest_batch`), no HTTP.

    BRAZE_BRIDGE_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/ingest_sql.py [--batches 150] [--batch-size 64] [--no-content]
            [--compare NAME=VALUE ...] [--rounds 1]

Builds bench/ingest.py's Extole `reward_fulfilled` webhooks through the real evaluate path,
writes them in batches on one connection, and reads that backend's CPU time from /proc
(Postgres on this host). `--no-content` leaves the Connected Content update out, to see its
share. Each round runs on a fresh database (created, migrated, dropped), so the statement is
planned against empty tables as on a new install.

Without `--compare` the connection gets the group committer's `BATCH_SESSION_SETTINGS`. With
`--compare a=1 b=2`, each round runs once per setting in turn (`none` = no setting), so the
settings are compared under the same machine load. `analyze` runs ANALYZE after migrating
instead of changing a setting.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest as bench  # the sibling bench: database and webhook helpers

from braze_bridge.db import migrate
from braze_bridge.db.repositories.connections import live_connections_on_driver
from braze_bridge.db.repositories.ingest_batch import (
    BATCH_SESSION_SETTINGS,
    IngestRecord,
    store_events_on_driver,
)
from braze_bridge.domain.json_body import parse_json_body
from braze_bridge.ingest.service import event_record
from braze_bridge.partners import PARTNERS
from braze_bridge.partners.evaluate import evaluate_body


async def run_once(args: argparse.Namespace, server: str, settings: dict[str, str]) -> float:
    """One fresh database, one connection with `settings`; Postgres CPU µs per webhook."""
    name, url = await bench.create_database(server)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        connection_id = await bench.seed_connection(url)
        conn = await asyncpg.connect(url)
        try:
            backend = await conn.fetchval("SELECT pg_backend_pid()")
            for setting, value in settings.items():
                if setting == "analyze":  # not a setting: statistics taken right after migrate
                    await conn.execute("ANALYZE")
                else:
                    await conn.execute("SELECT set_config($1, $2, false)", setting, value)
            live = (await live_connections_on_driver(conn, [connection_id]))[connection_id]
            now = datetime.now(UTC)

            def record(n: int) -> IngestRecord:
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
            # prepare the statement outside the clock
            await store_events_on_driver(conn, [record(-1)])
            cpu_before, started = bench.cpu_seconds(backend), time.perf_counter()
            for batch in batches:
                await store_events_on_driver(conn, batch)
            cpu = bench.cpu_seconds(backend) - cpu_before
            wall = time.perf_counter() - started
        finally:
            await conn.close()
        webhooks = args.batches * size
        label = ",".join(f"{k}={v}" for k, v in settings.items()) or "none"
        print(
            f"{label}: {webhooks} webhooks in batches of {size}"
            f"{' without content' if args.no_content else ''}: Postgres CPU "
            f"{1e6 * cpu / webhooks:.0f} µs per webhook, wall {1e6 * wall / webhooks:.0f} µs"
        )
        return 1e6 * cpu / webhooks
    finally:
        await bench.drop_database(server, name)


def _setting(text: str) -> dict[str, str]:
    if text == "none":
        return {}
    key, _, value = text.partition("=")
    return {key: value}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-content", action="store_true")
    parser.add_argument("--compare", nargs="+", metavar="NAME=VALUE")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    server = os.environ.get(
        "BRAZE_BRIDGE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    variants = [_setting(s) for s in args.compare] if args.compare else [BATCH_SESSION_SETTINGS]
    results: list[list[float]] = [[] for _ in variants]
    for _ in range(args.rounds):
        for n, settings in enumerate(variants):
            results[n].append(await run_once(args, server, dict(settings)))
    if len(variants) > 1:
        for n in range(1, len(variants)):
            ratios = [a / b for a, b in zip(results[n], results[0], strict=True)]
            print(
                f"CPU ratio {args.compare[n]} / {args.compare[0]} per round: "
                + ", ".join(f"{r:.2f}" for r in ratios)
            )


if __name__ == "__main__":
    asyncio.run(main())
