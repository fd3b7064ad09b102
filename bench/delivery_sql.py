"""Postgres cost of the delivery hot path alone: claim + attempts + settle + roll-up rounds.

    BRAZE_BRIDGE_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/delivery_sql.py [--objects 100000] [--runs 3]

No worker, no HTTP: the script runs the worker's repository calls (same functions, same
transactions: one for the claim, one for attempts + settle + roll-up) on a fresh database
holding the same backlog as bench/delivery.py, every object delivered, and reports the CPU
the Postgres backends spent per object (read from /proc, so the server must run on this
machine) and the WAL written per object. That is the database's share of `bench/delivery.py`
without the noise of the worker and the sandbox competing for the same cores.

Run it with `PYTHONPATH=<other checkout>/src` to measure another version's schema and SQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from delivery import (
    cpu_seconds,
    create_database,
    drop_database,
    load_backlog,
    make_connection,
)

from braze_bridge.db.engine import create_engine, create_sessionmaker
from braze_bridge.db.repositories import attempts, outbox
from braze_bridge.domain.statuses import OperationStatus

WAL_SQL = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8"
PER_REQUEST = 72  # objects per /users/track request in bench/delivery.py
CLAIM_HEADS = 300  # ~600 objects per claim, as the worker sizes it for this backlog


PHASES = ("claim", "attempts", "settle", "roll-up", "commits")


class Phases:
    """Backend CPU per phase of a round, read from /proc around each call (10 ms ticks add up
    over hundreds of rounds)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.spent = dict.fromkeys(PHASES, 0.0)
        self._last = cpu_seconds(pid)

    def mark(self, phase: str) -> None:
        now = cpu_seconds(self.pid)
        self.spent[phase] += now - self._last
        self._last = now


async def drain(url: str, owner: str) -> tuple[int, int, dict[str, float]]:
    """Deliver everything; returns (objects, rounds, backend CPU seconds per phase)."""
    engine = create_engine(url, pool_size=1)
    sessionmaker = create_sessionmaker(engine)
    delivered = rounds = 0
    try:
        async with sessionmaker() as session:
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
        phases = Phases(pid)
        while True:
            async with sessionmaker.begin() as session:
                claimed = await outbox.claim_due_operations(
                    session, owner=owner, limit=CLAIM_HEADS, lease_seconds=60
                )
                phases.mark("claim")
            phases.mark("commits")
            if not claimed:
                async with sessionmaker() as session:
                    await session.execute(text("SELECT pg_stat_force_next_flush()"))
                return delivered, rounds, phases.spent
            now = datetime.now(UTC)
            records = []
            for start in range(0, len(claimed), PER_REQUEST):
                chunk = claimed[start : start + PER_REQUEST]
                body = '{"attributes":[' + ",".join(op.payload_json for op in chunk) + "]}"
                records.append(
                    attempts.AttemptWrite(
                        tenant_id=chunk[0].tenant_id,
                        connection_id=chunk[0].connection_id,
                        endpoint="/users/track",
                        worker_id=owner,
                        request_json=body,
                        status_code=201,
                        response_body='{"message":"success","attributes_processed":72}',
                        response_headers={"content-type": "application/json"},
                        error=None,
                        duration_ms=3.0,
                        started_at=now,
                        operations=[(op.id, "delivered") for op in chunk],
                    )
                )
            rows = [
                outbox.SettleRow(op.id, OperationStatus.DELIVERED, sent_object=op.payload_json)
                for op in claimed
            ]
            async with sessionmaker.begin() as session:
                await attempts.record_attempts(session, records)
                phases.mark("attempts")
                settled = await outbox.settle_operations(session, owner=owner, rows=rows)
                phases.mark("settle")
                await outbox.roll_up_events(session, settled.event_ids)
                phases.mark("roll-up")
            phases.mark("commits")
            delivered += len(settled.statuses)
            rounds += 1
    finally:
        await engine.dispose()


async def one_run(
    server_url: str, objects: int, fillfactor: int | None, setup: str | None = None
) -> tuple[dict[str, float], float, float, int, float, float]:
    """(backend CPU µs/object per phase, WAL bytes/object, seconds, rounds, HOT share of
    updates, operations table MB after the drain) on a fresh backlog."""
    url = await create_database(server_url)
    db = await asyncpg.connect(url)
    try:
        if fillfactor is not None:
            await db.execute(f"ALTER TABLE operations SET (fillfactor = {int(fillfactor)})")
        if setup:
            await db.execute(setup)
        tenant, connection = await make_connection(db, "http://127.0.0.1:9")
        await load_backlog(db, tenant, connection, objects)
        await db.execute("CHECKPOINT")
        wal_before = await db.fetchval(WAL_SQL)
        started = time.perf_counter()
        # One pooled connection does everything; WAL is the server's (others write too).
        delivered, rounds, spent = await drain(url, f"bench-{uuid.uuid4().hex[:6]}")
        seconds = time.perf_counter() - started
        wal = await db.fetchval(WAL_SQL) - wal_before
        if delivered != objects:
            raise SystemExit(f"delivered {delivered} of {objects}")
        per_object = {phase: cpu / objects * 1e6 for phase, cpu in spent.items()}
        await db.execute("SELECT pg_stat_clear_snapshot()")
        updated, hot = await db.fetchrow(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'operations'"
        )
        size = await db.fetchval("SELECT pg_table_size('operations') / 1048576.0")
        return per_object, float(wal) / objects, seconds, rounds, hot / max(updated, 1), size
    finally:
        await db.close()
        await drop_database(server_url, url)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--fillfactor", type=int, default=None, help="set on operations before loading"
    )
    parser.add_argument("--setup", default=None, help="SQL run on the schema before loading")
    args = parser.parse_args()
    server_url = os.environ.get(
        "BRAZE_BRIDGE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    print(f"backlog: {args.objects} objects; Postgres backend CPU µs per object")
    print(
        "run  total  "
        + "  ".join(f"{p:>8}" for p in PHASES)
        + "  WAL B/object  seconds  objects/s  rounds  HOT updates  operations MB"
    )
    for n in range(1, args.runs + 1):
        cpu, wal, seconds, rounds, hot, size = await one_run(
            server_url, args.objects, args.fillfactor, args.setup
        )
        print(
            f"{n:>3}  {sum(cpu.values()):5.1f}  "
            + "  ".join(f"{cpu[p]:8.1f}" for p in PHASES)
            + f"  {wal:12.0f}  {seconds:7.1f}  {args.objects / seconds:9.0f}  {rounds:6d}"
            + f"  {hot:11.0%}  {size:13.1f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
