"""Event log, live feed and replay routes: GET /v1/events, /v1/events/stream, /v1/events/{id},
POST /v1/events/{id}/replay, POST /v1/events/replay, GET /v1/replays/{job_id}."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from braze_bridge.api.deps import ContextDep, PrincipalDep, SessionDep
from braze_bridge.api.paths import BODY_ERRORS, error_responses
from braze_bridge.api.schemas.events import EventDetail, EventPage, EventRead
from braze_bridge.api.schemas.replay import ReplayFilter, ReplayJobRead, ReplayRead
from braze_bridge.api.text_check import CHECK_ADMIN_TEXT
from braze_bridge.db.repositories.event_log import EventFilter
from braze_bridge.domain.events import EventKind
from braze_bridge.domain.statuses import EventStatus
from braze_bridge.errors import ErrorBody, ValidationFailed
from braze_bridge.logging import get_logger
from braze_bridge.ops import events as event_service
from braze_bridge.ops import replay as replay_service
from braze_bridge.ops import replay_jobs
from braze_bridge.ops.remap import PartnerLookup, registered_partners

router = APIRouter(
    prefix="/v1",
    tags=["events"],
    dependencies=[CHECK_ADMIN_TEXT],
    responses=error_responses(401),
)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown id, or another tenant's"}
}
# A prefix of one character would match a large share of the log.
USER_PREFIX_MIN = 2
STREAM_HEARTBEAT_SECONDS = 15.0

log = get_logger(__name__)


def partner_lookup() -> PartnerLookup:
    """The partner registry replay re-maps with (overridden in tests)."""
    return registered_partners


PartnersDep = Annotated[PartnerLookup, Depends(partner_lookup)]


async def event_filter(
    principal: PrincipalDep,
    context: ContextDep,
    connection_id: Annotated[uuid.UUID | None, Query(description="only this connection")] = None,
    status: Annotated[EventStatus | None, Query(description="event status word")] = None,
    kind: Annotated[
        EventKind | None,
        Query(description="event kind; `reward` matches every reward state (`reward_*`)"),
    ] = None,
    user: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=1024,
            description="external id, or email (any case): the event's user key or the email "
            "the event carries",
        ),
    ] = None,
    user_prefix: Annotated[
        str | None,
        Query(
            min_length=USER_PREFIX_MIN,
            max_length=255,
            description="external ids starting with this (as typed) or emails starting with "
            "it (any case); not with `user`",
        ),
    ] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="received at or after (ISO 8601)")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(description="received before (ISO 8601)")] = None,
) -> EventFilter:
    if since is not None and until is not None and since >= until:
        raise ValidationFailed(
            "invalid request: since must be before until",
            details=[
                {"field": "since", "message": "since must be before until", "type": "value_error"}
            ],
        )
    if user_prefix is not None and user is not None:
        raise ValidationFailed(
            "invalid request: give user or user_prefix, not both",
            details=[
                {
                    "field": "user_prefix",
                    "message": "give user or user_prefix, not both",
                    "type": "value_error",
                }
            ],
        )
    if user_prefix is not None and len(user_prefix.strip()) < USER_PREFIX_MIN:
        raise ValidationFailed(
            "invalid request: user_prefix",
            details=[
                {
                    "field": "user_prefix",
                    "message": f"at least {USER_PREFIX_MIN} characters besides spaces",
                    "type": "string_too_short",
                }
            ],
        )
    filters = EventFilter(
        connection_id,
        status,
        kind.value if kind is not None else None,
        user,
        since,
        until,
        user_prefix=user_prefix,
    )
    if connection_id is not None:
        # Its own short session: the live feed must not hold one for as long as it streams.
        async with context.sessionmaker() as session:
            await event_service.ensure_connection_visible(session, principal, connection_id)
    return filters


# The filter of the event-log routes; another tenant's connection_id answers 404.
FilterDep = Annotated[EventFilter, Depends(event_filter)]


@router.get(
    "/events",
    response_model=EventPage,
    responses={
        400: {"model": ErrorBody, "description": "the cursor is not one this API gave"},
        **NOT_FOUND,
        **error_responses(422),
    },
)
async def list_events(
    principal: PrincipalDep,
    session: SessionDep,
    filters: FilterDep,
    cursor: Annotated[
        str | None, Query(max_length=64, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=event_service.MAX_PAGE)] = 50,
) -> EventPage:
    """Events the token can see, newest first, one page at a time (keyset cursor)."""
    listing = await event_service.list_events(
        session, principal, filters, cursor=cursor, limit=limit
    )
    return EventPage(
        items=[EventRead.of(e) for e in listing.items], next_cursor=listing.next_cursor
    )


def _sse(event: str, data: str, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


def _sse_item(item: event_service.FeedItem) -> str:
    data = EventRead.of(item.event).model_dump_json()
    return _sse(item.change, data, str(item.event.id) if item.change == "created" else None)


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
        404: {"model": ErrorBody, "description": "unknown connection_id (or another tenant's)"},
        **error_responses(422),
    },
)
async def stream_events(
    principal: PrincipalDep,
    context: ContextDep,
    filters: FilterDep,
    after: Annotated[uuid.UUID | None, Query(description="resume after this event id")] = None,
    watch: Annotated[
        list[uuid.UUID] | None,
        Query(max_length=200, description="ids already shown whose status changes to report"),
    ] = None,
    last_event_id: Annotated[uuid.UUID | None, Header()] = None,
) -> StreamingResponse:
    """Live feed as server-sent events: `created` for each new matching event; `updated` with
    the current state of each `watch` event when the stream starts, and again whenever one
    changes status. Woken by Postgres NOTIFY (one listener per process), not by polling; the
    stream ends when the server stops (clients reconnect). Authenticate with the Authorization header (read the stream
    with fetch(); EventSource cannot send headers, and tokens never go in URLs)."""
    hub = context.live_feed
    if hub is None:  # pragma: no cover - the lifespan always builds one
        raise RuntimeError("the app's lifespan did not start the live feed hub")
    feed = event_service.EventFeed(
        context.sessionmaker, principal, filters, after=last_event_id or after, watch=watch or ()
    )
    # Subscribed before the first read: a change after it bumps the generation.
    generation = hub.generation
    first = [*await feed.prime(), *await feed.poll()]

    async def messages() -> AsyncIterator[str]:
        nonlocal generation
        yield f"retry: 3000\n: feed for {'operator' if principal.is_operator else 'tenant'}\n\n"
        items = first
        while True:
            for item in items:
                yield _sse_item(item)
            # A client that goes away cancels this generator (Starlette listens for the
            # disconnect); the hub closing (shutdown) ends it cleanly.
            await hub.wait(generation, STREAM_HEARTBEAT_SECONDS)
            if hub.closing:
                return
            if hub.generation == generation:
                yield ": keepalive\n\n"
                items = []
                continue
            generation = hub.generation
            try:
                items = await feed.poll()
            except Exception as exc:  # the database went away: end; the client reconnects
                log.warning("feed.poll_failed", exc_info=exc)
                return

    return StreamingResponse(
        messages(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/events/{event_id}", response_model=EventDetail, responses=NOT_FOUND)
async def get_event(
    event_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> EventDetail:
    """One event in full: raw body (credentials redacted), normalized event, every Braze object
    with its status and reason, and every attempt with request, status code, response, timing."""
    return EventDetail.of(await event_service.event_detail(session, principal, event_id))


@router.post(
    "/events/replay",
    status_code=202,
    response_model=ReplayJobRead,
    responses={**error_responses(*BODY_ERRORS, 422), **NOT_FOUND},
)
async def replay_matching(
    body: ReplayFilter, principal: PrincipalDep, session: SessionDep
) -> ReplayJobRead:
    """Replay every event matching the filter, in the background (a worker runs the job);
    follow GET /v1/replays/{id}."""
    filters = body.to_filter()
    if filters.connection_id is not None:
        await event_service.ensure_connection_visible(session, principal, filters.connection_id)
    job = await replay_jobs.start_bulk_replay(session, principal, filters)
    return ReplayJobRead.of(job)


@router.post(
    "/events/{event_id}/replay",
    response_model=ReplayRead,
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "cannot replay now"}},
)
async def replay_one(
    event_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, partners: PartnersDep
) -> ReplayRead:
    """Send again whatever this event's Braze objects did not deliver (never a delivered one)."""
    return ReplayRead.of(await replay_service.replay_event(session, principal, event_id, partners))


@router.get("/replays/{job_id}", response_model=ReplayJobRead, responses=NOT_FOUND)
async def get_replay(
    job_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> ReplayJobRead:
    """Progress of a bulk replay."""
    return ReplayJobRead.of(await replay_jobs.get_replay_job(session, principal, job_id))
