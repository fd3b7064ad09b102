"""The app served by a real uvicorn in a thread, on this test's database; can stop and start
again on the same port (a console whose server went away and came back)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from braze_bridge.app import Runtime, create_app
from braze_bridge.http_server import server_options
from tests.support.net import free_port


@asynccontextmanager
async def serving(runtime: Runtime, port: int | None = None) -> AsyncIterator[str]:
    """Serve `create_app(runtime)` on `port` (a free one by default); yields the base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
            # The CLI's protocol: its graceful stop ends the live feed's streams at once.
            **server_options(runtime.settings),
        )
    )
    thread = threading.Thread(target=server.run, name=f"server-{port}", daemon=True)
    thread.start()
    for _ in range(400):  # bounded wait for the lifespan to finish starting
        if server.started or not thread.is_alive():
            break
        await asyncio.sleep(0.025)
    assert server.started, "server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 15)
