"""Creating and dropping test databases on the test server.

`DROP DATABASE` makes Postgres checkpoint, which takes seconds on a busy machine, so a test's
database is dropped by a background thread while the next test runs. At most `backlog`
drops wait at any time (a test's teardown blocks beyond that), which bounds the disk a run
holds to a few databases, and the session waits for every drop before it ends.
"""

from __future__ import annotations

import asyncio
import queue
import threading
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
    """Drops databases in a background thread, in the order they were handed over."""

    def __init__(self, server_url: str, backlog: int = 4) -> None:
        self._server_url = server_url
        self._pending: queue.Queue[str | None] = queue.Queue(maxsize=backlog)
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="test-db-dropper", daemon=True)
        self._thread.start()

    def drop(self, name: str) -> None:
        """Queue `name` for dropping; blocks while `backlog` drops are already waiting."""
        self._pending.put(name)

    def close(self) -> None:
        """Wait for every queued drop; raises the first failure."""
        self._pending.put(None)
        self._thread.join()
        if self._errors:
            raise self._errors[0]

    def _run(self) -> None:
        while (name := self._pending.get()) is not None:
            try:
                asyncio.run(server_execute(self._server_url, drop_statement(name)))
            except Exception as exc:
                self._errors.append(exc)
