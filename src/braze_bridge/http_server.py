"""uvicorn, bounded: how long a client may take to send its request headers (the connection is
closed after that), plus the keep-alive and concurrency limits (docs/ops.md, "HTTP limits").
Requests too malformed to reach the app are answered in the error contract's shape."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from braze_bridge.config import Settings


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's header block.

    uvicorn times out only an idle keep-alive connection after a response; a client that
    connects and sends nothing, or half a header block, is otherwise held for ever. The
    deadline runs from the connection (or from the first byte of the next request on a
    keep-alive connection) until the headers are complete; when it passes, the socket closes.
    It builds on uvicorn's httptools protocol internals (written against uvicorn 0.55; the
    tests in tests/integration/test_http_edge.py run it as a real server).
    """

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
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

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer and close: the request never reached the app (its framing is unusable)."""
        self._cancel_header_timer()
        body = json.dumps({"error": {"code": code, "message": message, "details": None}}).encode()
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
        {"header_timeout": settings.http_header_timeout_seconds},
    )
    return {
        "http": protocol,
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "limit_concurrency": settings.http_limit_concurrency,
    }
