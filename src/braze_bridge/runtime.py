"""Process start-up without the web stack: resolve the database (embedded or given), the
secret key and the migrations; compose and run a delivery worker with its side tasks.

The CLI imports this for every command; only `serve` and `api` load the FastAPI app. Both
`braze-bridge worker` and `serve` build their worker with `build_worker`, so every worker
delivers, runs bulk replay jobs and purges expired data.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import gc
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from braze_bridge.config import Settings, load_or_create_secret_key
from braze_bridge.db import migrate
from braze_bridge.db.embedded import EmbeddedPostgres
from braze_bridge.logging import get_logger
from braze_bridge.security.secrets import SecretBox

log = get_logger(__name__)

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from braze_bridge.delivery.worker import DeliveryWorker, SideTask
    from braze_bridge.ops.replay_jobs import ReplayRunner

# Young-generation threshold for worker processes (Python's default is 700): above the container
# objects a few rounds in flight hold, so a round's objects are freed by reference counting
# before the collector ever scans them.
YOUNG_GC_THRESHOLD = 20_000


class ConfigurationError(RuntimeError):
    """Settings that cannot work together; the CLI prints the message and exits 2."""


@dataclass(frozen=True)
class Runtime:
    """Settings plus what start-up resolved: the database URL and the secret key."""

    settings: Settings
    database_url: str
    secret_key: str
    embedded: bool


@contextmanager
def open_runtime(
    settings: Settings, *, migrate_embedded: bool = True, share_embedded: bool = False
) -> Iterator[Runtime]:
    """Start the embedded Postgres when no URL is set (migrated to head), stop it on exit.

    `share_embedded` lets admin commands use a server that a running `serve` owns.
    """
    if settings.database_url is not None:
        if settings.secret_key is None:
            raise ConfigurationError(
                "BRAZE_BRIDGE_SECRET_KEY is required with BRAZE_BRIDGE_DATABASE_URL "
                "(it encrypts Braze API keys and webhook secrets at rest)"
            )
        yield Runtime(
            settings,
            settings.database_url.get_secret_value(),
            settings.secret_key.get_secret_value(),
            embedded=False,
        )
        return
    server = EmbeddedPostgres(settings.data_dir, shared=share_embedded)
    url = server.start()
    try:
        if migrate_embedded:
            migrate.upgrade(url)
        key = (
            settings.secret_key.get_secret_value()
            if settings.secret_key
            else load_or_create_secret_key(settings.data_dir)
        )
        yield Runtime(settings, url, key, embedded=True)
    finally:
        server.stop()


def build_secret_box(runtime: Runtime) -> SecretBox:
    return SecretBox(
        runtime.secret_key, [key.get_secret_value() for key in runtime.settings.old_secret_keys]
    )


def listen_dsn(database_url: str) -> str:
    """asyncpg wants a plain `postgresql://` URL."""
    scheme, rest = database_url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else database_url


class ReplayJobsOnDemand:
    """A worker's bulk-replay side task that imports the replay stack (partner models, the
    re-map path) only once a job exists. Most workers never run a job, and that import is
    about a second of CPU and 10 MB per process (bench/RESULTS.md, "After the structure
    redesign"); until then it looks for an open job at each NOTIFY or poll."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, poll_seconds: float = 2.0
    ) -> None:
        self._sessionmaker = sessionmaker
        self._poll_seconds = poll_seconds
        self._wakeup = asyncio.Event()
        self._runner: ReplayRunner | None = None

    def wake(self) -> None:
        if self._runner is not None:
            self._runner.wake()
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        from braze_bridge.db.notify import wait_first
        from braze_bridge.db.repositories.replay import has_open_job

        while not stop.is_set():
            self._wakeup.clear()  # before looking, so a job created meanwhile is not missed
            try:
                async with self._sessionmaker() as session:
                    if await has_open_job(session):
                        break
            except Exception:
                log.exception("replay.runner_error")  # database away: look again later
            await wait_first(self._wakeup, stop, delay=self._poll_seconds)
        if stop.is_set():
            return
        from braze_bridge.ops.remap import registered_partners
        from braze_bridge.ops.replay_jobs import ReplayRunner

        self._runner = ReplayRunner(
            self._sessionmaker, registered_partners, poll_seconds=self._poll_seconds
        )
        await self._runner.run(stop)


async def run_alerts_on_demand(
    sessionmaker: async_sessionmaker[AsyncSession],
    secret_box: SecretBox,
    stop: asyncio.Event,
    *,
    poll_seconds: float = 5.0,
) -> None:
    """The alert side task, whose stack (ops/alerts.py, through the error vocabulary: FastAPI)
    is imported only once some connection has an alert webhook; workers of deployments that
    use no alerts start as light as before."""
    from braze_bridge.db.notify import wait_first
    from braze_bridge.db.repositories.alerts import any_webhook

    while not stop.is_set():
        try:
            async with sessionmaker() as session:
                if await any_webhook(session):
                    break
        except Exception:
            log.exception("alerts.round_failed")  # database away: look again later
        await wait_first(stop, delay=poll_seconds)
    if stop.is_set():
        return
    from braze_bridge.ops.alerts import run_alerts

    await run_alerts(sessionmaker, secret_box, stop, interval_seconds=poll_seconds)


def worker_side_tasks(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    secret_box: SecretBox | None = None,
) -> list[SideTask]:
    """What every worker runs next to delivery: bulk replay jobs, the retention purge and
    (given the secret box that decrypts signing secrets) the alert webhooks."""
    # Imported here, like the rest of the worker's stack: admin commands stay light.
    from braze_bridge.db.notify import REPLAY_CHANNEL
    from braze_bridge.delivery.worker import SideTask
    from braze_bridge.ops.retention import purge_periodically

    replays = ReplayJobsOnDemand(sessionmaker)
    tasks = [
        SideTask("replay-runner", replays.run, channel=REPLAY_CHANNEL, wake=replays.wake),
        SideTask("retention", partial(purge_periodically, sessionmaker, settings.retention_days)),
    ]
    if secret_box is not None:
        tasks.append(SideTask("alerts", partial(run_alerts_on_demand, sessionmaker, secret_box)))
    return tasks


def build_worker(
    runtime: Runtime, sessionmaker: async_sessionmaker[AsyncSession], http: httpx.AsyncClient
) -> DeliveryWorker:
    """A delivery worker with its side tasks, listening for NOTIFYs on `runtime`'s database."""
    from braze_bridge.delivery.worker import DeliveryWorker, WorkerOptions

    box = build_secret_box(runtime)
    return DeliveryWorker(
        sessionmaker,
        http,
        box,
        listen_dsn=listen_dsn(runtime.database_url),
        options=WorkerOptions.from_settings(runtime.settings),
        side_tasks=worker_side_tasks(sessionmaker, runtime.settings, box),
    )


def freeze_startup_heap() -> None:
    """Keep the cyclic garbage collector off the hot path (worker processes only).

    Everything imported at start (SQLAlchemy, pydantic, the app) lives as long as the process,
    yet each full collection would rescan it, and the objects of rounds in flight would be
    scanned and promoted every 700 allocations. Freezing moves the start-up heap out of the
    collector's sight; the higher young threshold lets round objects die by reference counting
    first. Reference cycles are still collected, just less often.
    """
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])


@functools.cache
def skip_final_collection() -> None:
    """Freeze the heap at interpreter exit (once per process), so finalisation does not scan
    it: a `serve` stopped by Ctrl-C spent 1-4 s there on a loaded machine, 0.1 s frozen
    (docs/performance.md, "Exit without a final heap scan")."""
    atexit.register(gc.freeze)


async def run_worker_process(runtime: Runtime) -> None:
    """`braze-bridge worker`: run one worker until SIGTERM/SIGINT, then stop gracefully."""
    from braze_bridge.braze.transport import create_http_client
    from braze_bridge.db.engine import create_engine, create_sessionmaker

    engine = create_engine(runtime.database_url)
    http = create_http_client()
    worker = build_worker(runtime, create_sessionmaker(engine), http)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    freeze_startup_heap()
    try:
        await worker.run()
    finally:
        await http.aclose()
        await engine.dispose()
