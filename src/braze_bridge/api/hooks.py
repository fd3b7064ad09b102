"""POST /v1/hooks/{connection_id}: bounded body read, then the ingest service (DESIGN section 5)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from braze_bridge import metrics
from braze_bridge.api.deps import AppContext
from braze_bridge.errors import AppError, BadRequest, ErrorBody, PayloadTooLarge
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
