"""One LISTEN per process for every open live feed (GET /v1/events/stream).

Each open stream waits on this hub instead of polling: when Postgres announces that events
were stored or changed status (`EVENTS_CHANNEL`, and `OUTBOX_CHANNEL` for replays), the hub
bumps its generation once and every stream runs its own filtered query once. Bursts of NOTIFYs
are folded into one wake-up per `coalesce_seconds`. A NOTIFY is a hint: while the LISTEN
connection is down the hub wakes streams every `unheard_seconds`, and it always does every
`safety_seconds`, so a lost notification delays an update but never hides it.

`close()` (the server begins to stop) ends every stream at once, so a graceful shutdown never
waits on a console tab that is still open.
"""

from __future__ import annotations

import asyncio
import contextlib

from braze_bridge.db.notify import EVENTS_CHANNEL, OUTBOX_CHANNEL, OutboxListener


class FeedHub:
    def __init__(
        self,
        dsn: str | None,
        *,
        coalesce_seconds: float = 0.2,
        unheard_seconds: float = 1.0,
        safety_seconds: float = 30.0,
    ) -> None:
        self._listener = (
            None
            if dsn is None
            else OutboxListener(
                dsn, {EVENTS_CHANNEL: self.changed, OUTBOX_CHANNEL: self.changed}, log_as="feed"
            )
        )
        self._coalesce = coalesce_seconds
        self._unheard = unheard_seconds
        self._safety = safety_seconds
        self._tick = asyncio.Event()
        self._pending: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.generation = 0
        self.closing = False

    @property
    def listening(self) -> bool:
        return self._listener is not None and self._listener.listening.is_set()

    async def start(self) -> None:
        if self._listener is not None:
            self._tasks.append(asyncio.create_task(self._listener.run(), name="feed-listener"))
        self._tasks.append(asyncio.create_task(self._fallback(), name="feed-fallback"))

    def changed(self) -> None:
        """Something may have changed: wake every stream once, soon."""
        if self._pending is None and not self.closing:
            self._pending = asyncio.get_running_loop().call_later(self._coalesce, self._wake)

    def _wake(self) -> None:
        self._pending = None
        self.generation += 1
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def wait(self, generation: int, at_most: float) -> None:
        """Return once the generation moved past `generation`, the hub closes, or `at_most` seconds."""
        if self.closing or self.generation != generation:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._tick.wait(), at_most)

    def close(self) -> None:
        """End every stream now (idempotent); new streams end at once."""
        if self.closing:
            return
        self.closing = True
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._wake()

    async def stop(self) -> None:
        self.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _fallback(self) -> None:
        quiet = 0.0
        while True:
            await asyncio.sleep(self._unheard)
            quiet += self._unheard
            if not self.listening or quiet >= self._safety:
                quiet = 0.0
                self._wake()
