"""uvicorn, bounded: how long a client may take to send its request headers (the connection is
closed after that), how many connections one client address may hold, plus the keep-alive and
concurrency limits (docs/ops.md, "HTTP limits"). Requests too malformed to reach the app are
answered in the error contract's shape."""

from __future__ import annotations

import asyncio
import errno
import json
import socket
from collections import Counter
from typing import Any, ClassVar

import httptools
import uvicorn

# uvicorn has no public hook for these limits; its protocol class is the one seam (uvicorn's
# `http=` option takes a class). What this module uses of it beyond asyncio's Protocol methods
# is listed in `BoundedHttpToolsProtocol`'s docstring.
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from braze_bridge import metrics
from braze_bridge.config import Settings


class ClientSlots:
    """Open connections per peer address, in one server process (its event loop only)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def take(self, client: str) -> bool:
        """Count one more connection from `client`, or refuse it (False) at the limit."""
        if self.limit and self._open[client] >= self.limit:
            return False
        self._open[client] += 1
        return True

    def give_back(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]

    def held(self, client: str) -> int:
        return self._open[client]


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's header block and a cap on
    the connections one peer address holds.

    uvicorn times out only an idle keep-alive connection after a response; a client that
    connects and sends nothing, or half a header block, is otherwise held for ever. The
    deadline runs from the connection (or from the first byte of the next request on a
    keep-alive connection) until the headers are complete; when it passes, the socket closes.

    A connection beyond its address's cap is answered `429` at once and closed, before any of
    its bytes are read. The address is the TCP peer's: behind a proxy or load balancer that is
    the proxy for every client (docs/ops.md says how to set the cap there).

    uvicorn internals used (written against uvicorn 0.55; tests/integration/test_http_edge.py
    and test_http_client_cap.py run it as a real server): the module
    `uvicorn.protocols.http.httptools_impl` and its `STATUS_LINE`; the attributes `parser`,
    `transport`, `loop`, `server_state.default_headers`; the parser callbacks
    `on_message_begin`/`on_headers_complete`; and, in `data_received` (a copy of uvicorn's own
    with other refusals), `_unset_keepalive_if_required`, `_should_upgrade`,
    `handle_websocket_upgrade` and `_unsupported_upgrade_warning`; in `shutdown` (called on
    each connection when a graceful stop begins), `cycle` and its ASGI `scope`, whose "app"
    Starlette sets to the app.
    """

    header_timeout: ClassVar[float] = 10.0
    client_slots: ClassVar[ClientSlots] = ClientSlots(0)
    _header_timer: asyncio.TimerHandle | None = None
    _slot: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        if not self.client_slots.take(client):
            metrics.http_connection_refused("per_client_cap")
            limit = self.client_slots.limit
            self._refuse(
                429,
                "too_many_connections",
                f"this client already holds {limit} open connections; close one and retry",
                details={"max_connections_per_client": limit},
            )
            return
        self._slot = client
        self._start_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def shutdown(self) -> None:
        """The server begins a graceful stop. Tell the app first (`begin_shutdown`, when it has
        one) so it ends responses that would never finish on their own, such as the live
        feed's streams; uvicorn then waits for them to complete, and they do at once."""
        cycle = self.cycle
        app = cycle.scope.get("app") if cycle is not None else None
        begin_shutdown = getattr(app, "begin_shutdown", None)
        if callable(begin_shutdown):
            begin_shutdown()
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if self._slot is not None:
            self.client_slots.give_back(self._slot)
            self._slot = None
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def data_received(self, data: bytes) -> None:
        # uvicorn's own version, with a refusal in the error shape (and 413 for a
        # Content-Length too large to parse) instead of its plain-text 400.
        if self._slot is None:
            return  # refused at connect: its bytes are not read
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if "Content-Length overflow" in str(exc):
                self._refuse(413, "payload_too_large", "Content-Length is too large")
            else:
                self._refuse(400, "bad_request", f"invalid HTTP request: {exc}")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "bad_request", msg)

    def _refuse(self, status: int, code: str, message: str, details: Any = None) -> None:
        """Answer and close: the request never reached the app (its framing is unusable)."""
        self._cancel_header_timer()
        error = {"code": code, "message": message, "details": details}
        body = json.dumps({"error": error}).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(head))
        self.transport.close()

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def server_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn.run keyword arguments that bound slow and numerous clients."""
    protocol = type(
        "ConfiguredHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {
            "header_timeout": settings.http_header_timeout_seconds,
            "client_slots": ClientSlots(settings.http_max_connections_per_client),
        },
    )
    return {
        "http": protocol,
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "limit_concurrency": settings.http_limit_concurrency,
    }


class PortUnavailable(RuntimeError):
    """A listening address that cannot be bound; the message names the variable to change."""


def bind_listener(host: str, port: int, variable: str) -> socket.socket:
    """Bind and listen on host:port before anything else starts, so a port in use is one
    clear line at once (naming `variable`), not a traceback after the banner."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise PortUnavailable(f"cannot resolve the bind address {host!r}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise PortUnavailable(
            f"cannot listen on {host}:{port} ({reason}); set {variable} to a free port"
        ) from None
    return sock


async def start_side_server(app: Any, sock: socket.socket) -> uvicorn.Server:
    """Serve `app` on an already bound socket inside the running event loop (the metrics
    listener beside the API); stop it with `stop_side_server`."""
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # what Server.serve sets before startup
    await server.startup(sockets=[sock])
    return server


async def stop_side_server(server: uvicorn.Server, sock: socket.socket) -> None:
    await server.shutdown(sockets=[sock])
