"""Creating and dropping test databases on the test server.

`DROP DATABASE` waits for a checkpoint (PostgreSQL 15 forces one), which takes seconds on a
busy machine. So a test's database is dropped from background threads while the next tests
run; drops that wait together share one checkpoint. At most `backlog` drops are unfinished
at any time (a teardown blocks beyond that), which bounds the disk a run holds, and the
session waits for every drop before it ends.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def drop_statement(name: str) -> str:
    return f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'


async def server_execute(server_url: str, *statements: str) -> None:
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()


class DatabaseDropper:
    """Drops databases from background threads; `close` waits for all of them."""

    def __init__(self, server_url: str, *, threads: int = 4, backlog: int = 16) -> None:
        self._server_url = server_url
        self._slots = threading.BoundedSemaphore(backlog)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="test-db-dropper")
        self._futures: list[Future[None]] = []

    def drop(self, name: str) -> None:
        """Queue `name` for dropping; blocks while `backlog` drops are still unfinished."""
        self._slots.acquire()
        self._futures.append(self._pool.submit(self._drop, name))

    def close(self) -> None:
        """Wait for every queued drop; raises the first failure."""
        self._pool.shutdown(wait=True)
        for future in self._futures:
            future.result()

    def _drop(self, name: str) -> None:
        try:
            asyncio.run(server_execute(self._server_url, drop_statement(name)))
        finally:
            self._slots.release()
