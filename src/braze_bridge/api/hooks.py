"""POST /v1/hooks/{connection_id}: bounded body read, then the ingest service (DESIGN section 5)."""

from __future__ import annotations

import re
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from braze_bridge import metrics
from braze_bridge.api.deps import AppContext
from braze_bridge.errors import AppError, BadRequest, ErrorBody, PayloadTooLarge, error_response
from braze_bridge.ingest import service
from braze_bridge.ingest.store import EventStore

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


@router.post(
    "/v1/hooks/{connection_id}",
    responses={
        200: {"model": WebhookReply, "description": "stored (accepted) or a redelivery"},
        400: {"model": ErrorBody, "description": "body is not valid JSON (position in details)"},
        401: {"model": ErrorBody, "description": "missing or wrong webhook credentials"},
        404: {"model": ErrorBody, "description": "unknown connection"},
        413: {"model": ErrorBody, "description": "body larger than BRAZE_BRIDGE_MAX_BODY_BYTES"},
        415: {"model": ErrorBody, "description": "Content-Type is not JSON"},
    },
)
async def receive_webhook(connection_id: str, request: Request) -> Response:
    """Store one partner webhook durably, then acknowledge it (duplicates answer `duplicate`)."""
    # Normally served by WebhookFastPath below; this route documents the endpoint (OpenAPI) and
    # serves it when the app runs without that middleware.
    return await handle_webhook(connection_id, request)


async def handle_webhook(connection_id: str, request: Request) -> Response:
    """The endpoint's work; AppError propagates to the caller (rendered by the error handlers)."""
    # The hot path skips FastAPI dependencies and response-model validation: the sync
    # `get_context` dependency alone costs a thread-pool hop per request.
    context: AppContext = request.app.state.context
    connection = await service.find_connection(
        context.engine,
        service.parse_connection_id(connection_id),
        getattr(request.app.state, "connection_lookup", None),
    )
    try:
        body = await read_body_limited(request, context.settings.max_body_bytes)
        ack = await service.accept_webhook(
            engine=context.engine,
            store=event_store(request),
            box=context.secrets,
            connection=connection,
            body=body,
            headers=request.headers,
        )
    except AppError as exc:
        metrics.webhook_received(str(connection.id), None, exc.code)
        raise
    kind = ack.normalized.kind if ack.normalized is not None else None
    outcome = "accepted" if ack.outcome == "queued" else ack.outcome
    metrics.webhook_received(str(connection.id), kind, outcome)
    reply = f'{{"status":"{ack.status}","event_id":"{ack.event_id}"}}'
    return Response(reply.encode(), media_type="application/json")


# The route's path as Starlette matches it: `{connection_id}` is one non-empty path segment.
_HOOK_PATH = re.compile(r"/v1/hooks/([^/]+)")


class WebhookFastPath:
    """ASGI middleware answering `POST /v1/hooks/{connection_id}` without the router.

    Webhooks are the one high-volume request. Routing across every API route, FastAPI's
    dependency solving and its exception middleware cost about as much server CPU as the ingest
    work itself, and the route uses none of them. The answer is the same as the route's:
    same handler, AppError rendered by the same `error_response`; anything else propagates to
    Starlette's ServerErrorMiddleware (a 500) exactly as from the route.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            root_path: str = scope.get("root_path", "")
            if root_path and path.startswith(root_path):
                path = path[len(root_path) :]
            match = _HOOK_PATH.fullmatch(path)
            if match is not None:
                request = Request(scope, receive)
                try:
                    response = await handle_webhook(match.group(1), request)
                except AppError as exc:
                    response = error_response(exc.status_code, exc.code, exc.message, exc.details)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
