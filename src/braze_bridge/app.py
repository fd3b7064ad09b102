"""Process wiring: resolve the database (embedded or given), build the FastAPI app and its lifespan."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from braze_bridge.api import alerts as alerts_api
from braze_bridge.api import connections, content, hooks, ops, preview, tenants
from braze_bridge.api import events as events_api
from braze_bridge.api import health as health_api
from braze_bridge.api import metrics as metrics_api
from braze_bridge.api import stats as stats_api
from braze_bridge.api.deps import AppContext
from braze_bridge.api.docs import install_offline_docs
from braze_bridge.braze.transport import create_http_client
from braze_bridge.console import router as console
from braze_bridge.db.engine import create_engine, create_sessionmaker
from braze_bridge.db.repositories import tokens
from braze_bridge.delivery.worker import DeliveryWorker
from braze_bridge.errors import UNEXPECTED_ERROR_LOGGED, install_error_handlers
from braze_bridge.http_server import start_side_server, stop_side_server
from braze_bridge.ingest.group_commit import GroupCommitter
from braze_bridge.ingest.lookup import ConnectionLookup
from braze_bridge.logging import get_logger
from braze_bridge.ops.live_feed import FeedHub
from braze_bridge.runtime import (
    ConfigurationError,
    Runtime,
    build_secret_box,
    build_worker,
    listen_dsn,
    open_runtime,
    skip_final_collection,
)
from braze_bridge.security.tokens import display_prefix, hash_token

log = get_logger(__name__)

__all__ = ["ConfigurationError", "Runtime", "create_app", "open_runtime"]


class BridgeApp(FastAPI):
    """The API app. `POST /v1/hooks/{id}` is answered by `hooks.serve_webhook` before routing
    and middleware (the reason and the consequences: api/hooks.py)."""

    def begin_shutdown(self) -> None:
        """The server stops accepting and waits for open responses: end the live feed's
        streams now, or it would wait for its graceful-shutdown timeout (http_server.py)."""
        context: AppContext | None = getattr(self.state, "context", None)
        if context is not None and context.live_feed is not None:
            context.live_feed.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection_id = hooks.webhook_connection_id(scope)
        if connection_id is not None:
            context: AppContext = self.state.context
            await hooks.serve_webhook(connection_id, context, scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:
            # Already answered with a 500 and logged without internals: the server's own
            # "Exception in ASGI application" line would log it again, traceback, SQL and all.
            if scope.get(UNEXPECTED_ERROR_LOGGED) is not exc:
                raise


def create_app(
    runtime: Runtime, *, run_worker: bool = False, metrics_listener: socket.socket | None = None
) -> FastAPI:
    """The API app. Its lifespan owns the engine, the outbound httpx client and, with
    `run_worker` (`braze-bridge serve`), one in-process delivery worker, which also runs bulk
    replay jobs and the retention purge (as every `braze-bridge worker` does). With
    `metrics_listener` (BRAZE_BRIDGE_METRICS_PORT) it also serves /metrics on that socket."""
    settings = runtime.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(runtime.database_url)
        sessionmaker = create_sessionmaker(engine)
        http = create_http_client()
        if settings.bootstrap_token is not None:
            async with sessionmaker.begin() as session:
                value = settings.bootstrap_token.get_secret_value()
                await tokens.ensure_bootstrap_token(
                    session, hash_token(value), display_prefix(value)
                )
        # Webhook writes share transactions (ingest/group_commit.py); stopped before the engine.
        event_store = GroupCommitter(engine)
        await event_store.start()
        connection_lookup = ConnectionLookup(engine)
        worker_task: asyncio.Task[None] | None = None
        worker: DeliveryWorker | None = None
        if run_worker:
            worker = build_worker(runtime, sessionmaker, http)
            worker_task = asyncio.create_task(worker.run(), name="delivery-worker")
        skip_final_collection()
        live_feed = FeedHub(listen_dsn(runtime.database_url))
        await live_feed.start()
        app.state.context = AppContext(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            http=http,
            secrets=build_secret_box(runtime),
            event_store=event_store,
            connection_lookup=connection_lookup,
            worker=worker,
            live_feed=live_feed,
        )
        metrics_server = (
            await start_side_server(metrics_api.metrics_app(app.state), metrics_listener)
            if metrics_listener is not None
            else None
        )
        log.info("app.started", embedded=runtime.embedded, worker=run_worker)
        try:
            yield
        finally:
            await live_feed.stop()
            if metrics_server is not None and metrics_listener is not None:
                await stop_side_server(metrics_server, metrics_listener)
            if worker is not None and worker_task is not None:
                worker.stop()
                await worker_task
            await event_store.stop()
            await connection_lookup.close()
            await http.aclose()
            await engine.dispose()
            log.info("app.stopped")

    app = BridgeApp(
        title="braze-bridge",
        version="0.1.0",
        summary="Extole and Antavo webhooks, stored durably and delivered to Braze",
        lifespan=lifespan,
        docs_url=None,  # served from local assets below: /docs and /redoc work offline
        redoc_url=None,
    )
    install_error_handlers(app)
    install_offline_docs(app)
    # First: routes are matched in order, and webhooks are by far the most frequent request.
    app.include_router(hooks.router)
    app.include_router(ops.router)
    app.include_router(tenants.router)
    app.include_router(connections.router)
    if settings.metrics_port is None:  # else only on its own listener: here a 404
        app.include_router(metrics_api.router)
    app.include_router(events_api.router)
    app.include_router(health_api.router)
    app.include_router(alerts_api.router)
    app.include_router(console.router)
    app.include_router(content.router)
    app.include_router(preview.router)
    app.include_router(stats_api.router)
    return app
