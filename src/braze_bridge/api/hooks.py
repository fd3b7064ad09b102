"""POST /v1/hooks/{connection_id}: bounded body read, then the ingest service (DESIGN section 5)."""

from __future__ import annotations

import asyncio
import re
from typing import Literal

from fastapi import APIRouter, Request, Response
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
from braze_bridge.ingest.event_store import EventStore
from braze_bridge.logging import get_logger

log = get_logger(__name__)

router = APIRouter(tags=["webhooks"])


class WebhookReply(BaseModel):
    status: Literal["accepted", "duplicate"]
    event_id: str


def event_store(request: Request) -> EventStore:
    """The app's group committer (started by the lifespan)."""
    store: EventStore = request.app.state.event_store
    return store


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


@router.post(
    "/v1/hooks/{connection_id}",
    responses={
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
    },
)
async def receive_webhook(connection_id: str, request: Request) -> Response:
    """Store one partner webhook durably, then acknowledge it (duplicates answer `duplicate`)."""
    # Normally answered by `serve_webhook` before routing (see app.BridgeApp); this route
    # documents the endpoint (OpenAPI) and serves it in an app built without that shortcut.
    return await handle_webhook(connection_id, request)


async def handle_webhook(connection_id: str, request: Request) -> Response:
    """The endpoint's work; AppError propagates to the caller (rendered by the error handlers)."""
    ack = await _accept(connection_id, request)
    return Response(_reply_body(ack), media_type="application/json")


async def _accept(connection_id: str, request: Request) -> service.WebhookAck:
    # The hot path skips FastAPI dependencies and response-model validation: the sync
    # `get_context` dependency alone costs a thread-pool hop per request.
    context: AppContext = request.app.state.context
    connection = await service.find_connection(
        context.engine,
        service.parse_connection_id(connection_id),
        getattr(request.app.state, "connection_lookup", None),
    )
    try:
        try:
            body = await read_body_deadline(
                request, context.settings.max_body_bytes, context.settings.http_body_timeout_seconds
            )
        except ClientDisconnect:
            # A partner's retry, a network cut or a probe: an expected event, not a bug.
            metrics.webhook_aborted(connection.id)
            log.info("webhook.client_disconnected", connection_id=str(connection.id))
            raise
        ack = await service.accept_webhook(
            engine=context.engine,
            store=event_store(request),
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
    return ack


def _reply_body(ack: service.WebhookAck) -> bytes:
    return f'{{"status":"{ack.status}","event_id":"{ack.event_id}"}}'.encode()


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


async def serve_webhook(connection_id: str, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one webhook straight from the ASGI server, without the router and middleware.

    Webhooks are the one high-volume request. Routing across every API route, FastAPI's
    dependency solving, its telemetry checks and exception middleware cost about as much server
    CPU as the ingest work itself, and this endpoint uses none of them. The answer is the route's:
    same handler, AppError rendered by the same `error_response`, anything else a logged 500 in
    the contract's shape (as the app's own handler does). `scope["app"]` must be the app.
    """
    request = Request(scope, receive)
    try:
        ack = await _accept(connection_id, request)
    except AppError as exc:
        # The rest of a timed-out body may still be on its way: close rather than read it.
        headers = {"connection": "close"} if isinstance(exc, RequestTimeout) else None
        await error_response(exc.status_code, exc.code, exc.message, exc.details, headers)(
            scope, receive, send
        )
        return
    except ClientDisconnect:
        return  # nobody is left to answer; counted and logged by _accept
    except Exception as exc:
        await unexpected_error_response(exc)(scope, receive, send)
        return
    body = _reply_body(ack)
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
