"""POST /v1/hooks/{connection_id}: bounded body read, then the ingest service.

The one high-volume request is answered by `serve_webhook` straight from the ASGI server,
before FastAPI's routing (see `app.BridgeApp`): routing across every API route, dependency
solving and the middleware stack nearly double the server CPU a webhook costs
(`bench/hook_cpu.py`). `serve_webhook` is the only code that serves the
endpoint; the route registered here only documents it in /openapi.json. Consequence: app
middleware, dependencies and exception handlers never see a webhook. Add what a webhook needs
to `serve_webhook` itself. The contract: docs/contract.md, "5. Webhooks".
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, Literal, NoReturn

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from braze_bridge import metrics
from braze_bridge.api.deps import AppContext
from braze_bridge.errors import (
    AppError,
    BadRequest,
    ErrorBody,
    PayloadTooLarge,
    RequestTimeout,
    error_response,
    unexpected_error_response,
)
from braze_bridge.ingest import service
from braze_bridge.logging import get_logger

log = get_logger(__name__)

router = APIRouter(tags=["webhooks"])


class WebhookReply(BaseModel):
    status: Literal["accepted", "duplicate"]
    event_id: str


HOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": WebhookReply, "description": "stored (accepted) or a redelivery"},
    400: {"model": ErrorBody, "description": "body is not valid JSON (position in details)"},
    401: {"model": ErrorBody, "description": "missing or wrong webhook credentials"},
    404: {"model": ErrorBody, "description": "unknown connection"},
    408: {
        "model": ErrorBody,
        "description": "body not received within BRAZE_BRIDGE_HTTP_BODY_TIMEOUT_SECONDS",
    },
    413: {"model": ErrorBody, "description": "body larger than BRAZE_BRIDGE_MAX_BODY_BYTES"},
    415: {"model": ErrorBody, "description": "Content-Type is not JSON"},
}

WEBHOOK_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "the partner's webhook as it sends it (Extole or Antavo); "
                "authenticated over the raw bytes, stored as received",
            }
        }
    },
}


@router.post(
    "/v1/hooks/{connection_id}",
    responses=HOOK_RESPONSES,
    response_model=None,
    openapi_extra={"requestBody": WEBHOOK_BODY},
)
async def receive_webhook(connection_id: str) -> NoReturn:
    """Store one partner webhook durably, then acknowledge it (duplicates answer `duplicate`)."""
    # Documentation only: `BridgeApp` hands every matching request to `serve_webhook` first.
    raise RuntimeError(f"webhook {connection_id} reached the router: build the app with create_app")


async def read_body_limited(request: Request, limit: int) -> bytes:
    """The raw body, refusing as soon as it passes `limit` bytes (no unbounded buffering)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if length > limit:
            raise PayloadTooLarge(
                f"body is larger than {limit} bytes", details={"max_body_bytes": limit}
            )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"body is larger than {limit} bytes", details={"max_body_bytes": limit}
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body_deadline(request: Request, limit: int, seconds: float) -> bytes:
    """`read_body_limited`, refused with 408 when the whole body takes longer than `seconds`
    seconds (a slow or stalled client otherwise holds its connection for ever)."""
    try:
        async with asyncio.timeout(seconds):
            return await read_body_limited(request, limit)
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {seconds:g} s",
            details={"body_timeout_seconds": seconds},
        ) from None


class HookOutcome:
    """What one webhook's log line says: which connection and source, how many body bytes. Never
    the body, its headers or the connection's secrets."""

    __slots__ = ("bytes", "connection_id", "outcome", "source", "started")

    def __init__(self, connection_id: str) -> None:
        self.started = time.perf_counter()
        self.connection_id = connection_id[:100]
        self.source: str | None = None
        self.bytes: int | None = None
        self.outcome = "accepted"

    def log(self, outcome: str, status: int | None, event_id: object = None) -> None:
        # One line per webhook, whatever became of it: a refused secret (401) is a warning, as
        # it means a partner's webhooks are all being lost until someone fixes the secret.
        emit = log.warning if status == 401 else log.info
        emit(
            "webhook.handled",
            connection_id=self.connection_id,
            source=self.source,
            outcome=outcome,
            status=status,
            bytes=self.bytes,
            duration_ms=round((time.perf_counter() - self.started) * 1000, 2),
            event_id=None if event_id is None else str(event_id),
        )


async def _accept(
    connection_id: str, request: Request, context: AppContext, seen: HookOutcome
) -> service.WebhookAck:
    connection = await service.find_connection(
        context.engine, service.parse_connection_id(connection_id), context.connection_lookup
    )
    seen.source = connection.source
    try:
        try:
            body = await read_body_deadline(
                request, context.settings.max_body_bytes, context.settings.http_body_timeout_seconds
            )
        except ClientDisconnect:
            # A partner's retry, a network cut or a probe: an expected event, not a bug.
            metrics.webhook_aborted(connection.id)
            raise
        seen.bytes = len(body)
        ack = await service.accept_webhook(
            engine=context.engine,
            store=context.event_store,
            box=context.secrets,
            connection=connection,
            body=body,
            headers=request.headers,
        )
    except AppError as exc:
        metrics.webhook_received(connection.id, None, exc.code)
        raise
    kind = ack.normalized.kind if ack.normalized is not None else None
    outcome = "accepted" if ack.outcome == "queued" else ack.outcome
    metrics.webhook_received(connection.id, kind, outcome)
    seen.outcome = outcome
    return ack


# The route's path as Starlette matches it: `{connection_id}` is one non-empty path segment;
# a trailing slash reaches the same handler (Starlette's router would answer a bare 307).
_HOOK_PATH = re.compile(r"/v1/hooks/([^/]+)/?")


def webhook_connection_id(scope: Scope) -> str | None:
    """The `{connection_id}` of a `POST /v1/hooks/{connection_id}` request, else None."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    match = _HOOK_PATH.fullmatch(path)
    return None if match is None else match.group(1)


async def serve_webhook(
    connection_id: str, context: AppContext, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer one webhook as the ASGI app: 200 with `WebhookReply`, an AppError in the contract's
    shape (`error_response`, as the app's handlers render it), anything else a logged 500 in
    that shape. A client gone mid-body gets no answer (nobody is left to read it)."""
    request = Request(scope, receive)
    seen = HookOutcome(connection_id)
    try:
        ack = await _accept(connection_id, request, context, seen)
    except AppError as exc:
        seen.log(exc.code, exc.status_code)
        await error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)(
            scope, receive, send
        )
        return
    except ClientDisconnect:
        seen.log("client_disconnected", None)  # nobody is left to answer; counted by _accept
        return
    except Exception as exc:
        seen.log("internal_error", 500)
        await unexpected_error_response(exc)(scope, receive, send)
        return
    body = f'{{"status":"{ack.status}","event_id":"{ack.event_id}"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
    seen.log(seen.outcome, 200, ack.event_id)  # after the answer: the partner never waits on it
