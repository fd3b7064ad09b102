"""The event log for ops: filtered pages, one event in full, and the live feed."""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge.db.models import DeliveryAttempt, Event, OutboxOperation
from braze_bridge.db.repositories import event_log
from braze_bridge.db.repositories.event_log import EventFilter, EventSummary
from braze_bridge.domain.json_body import parse_json_body
from braze_bridge.domain.principal import Principal
from braze_bridge.domain.redaction import REDACTED, is_secret_name
from braze_bridge.domain.statuses import EventStatus
from braze_bridge.errors import BadRequest, InvalidJson, NotFound
from braze_bridge.security.headers import STORED_HEADERS

MAX_PAGE = 200

# Events whose status can still change; the live feed re-checks them.
IN_MOTION = frozenset({EventStatus.RECEIVED, EventStatus.QUEUED})
FOLLOWED_LIMIT = 500


@dataclass(frozen=True, slots=True)
class EventListing:
    items: list[EventSummary]
    next_cursor: str | None


def redact_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Stored request headers minus anything that authenticates (values replaced, names kept)."""
    return {
        name: REDACTED if is_secret_name(name) else value for name, value in (headers or {}).items()
    }


def shown_request_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """A stored webhook's headers as event detail shows them: the allowlisted names, and the
    names of credentials with `[redacted]` values. Rows stored before the allowlist may hold a
    partner's custom headers (any of which may carry a secret): those are left out."""
    redacted = redact_headers(headers)
    return {k: v for k, v in redacted.items() if k.lower() in STORED_HEADERS or v == REDACTED}


async def ensure_connection_visible(
    session: AsyncSession, principal: Principal, connection_id: uuid.UUID
) -> None:
    """Another tenant's connection id answers 404, exactly like an unknown one."""
    if not await event_log.connection_visible(session, principal.tenant_id, connection_id):
        raise NotFound(f"no connection {connection_id}")


async def list_events(
    session: AsyncSession,
    principal: Principal,
    filters: EventFilter,
    *,
    cursor: str | None,
    limit: int,
) -> EventListing:
    """A page of the principal's events; a `filters.connection_id` is one it may see
    (`ensure_connection_visible`, checked by the route with the rest of the filter)."""
    before = None
    if cursor:
        try:
            before = event_log.decode_cursor(cursor)
        except ValueError as exc:
            raise BadRequest(
                "invalid cursor: pass next_cursor from the previous page unchanged",
                details={"cursor": cursor},
            ) from exc
    page = await event_log.list_events(
        session, principal.tenant_id, filters, before=before, limit=min(max(limit, 1), MAX_PAGE)
    )
    next_cursor = event_log.encode_cursor(page.next_after) if page.next_after else None
    return EventListing(page.items, next_cursor)


@dataclass(frozen=True, slots=True)
class ShownBody:
    """A stored webhook body as event detail shows it."""

    text: str  # the bytes as received, decoded as UTF-8 (errors replaced)
    parsed: Any  # the body parsed, when it is JSON
    content_type: str | None
    headers: dict[str, Any]  # `shown_request_headers`
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ShownAttempt:
    attempt: DeliveryAttempt
    response_headers: dict[str, Any] | None  # `redact_headers` of what Braze answered
    outcomes: list[tuple[int, str | None]]  # (operation id, outcome)


@dataclass(frozen=True, slots=True)
class ShownEvent:
    """One event in full, with nothing in it that authenticates."""

    event: Event
    summary: EventSummary  # the event as the list shows it (shown reason, next retry)
    raw: ShownBody | None  # None once retention purged the body
    operations: list[OutboxOperation]
    attempts: list[ShownAttempt]


async def event_detail(
    session: AsyncSession, principal: Principal, event_id: uuid.UUID
) -> ShownEvent:
    record = await event_log.get_event_record(session, principal.tenant_id, event_id)
    if record is None:
        raise NotFound(f"no event {event_id}")
    raw = None
    if record.body is not None:
        text = record.body.body.decode("utf-8", errors="replace")
        try:
            parsed: Any = parse_json_body(record.body.body)  # ingest's parser
        except InvalidJson:
            parsed = None
        raw = ShownBody(
            text=text,
            parsed=parsed,
            content_type=record.body.content_type,
            headers=shown_request_headers(record.body.headers),
            size_bytes=len(record.body.body),
        )
    attempts = [
        ShownAttempt(
            item.attempt,
            None
            if item.attempt.response_headers is None
            else redact_headers(item.attempt.response_headers),
            item.outcomes,
        )
        for item in record.attempts
    ]
    [summary] = await event_log.event_statuses(session, principal.tenant_id, [event_id])
    return ShownEvent(record.event, summary, raw, record.operations, attempts)


@dataclass(frozen=True, slots=True)
class FeedItem:
    change: Literal["created", "updated"]
    event: EventSummary


class EventFeed:
    """What changed since the last look: new matching events, and status changes of events
    this feed has shown that were still in motion. One short session per poll."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        principal: Principal,
        filters: EventFilter,
        *,
        after: uuid.UUID | None,
        watch: Sequence[uuid.UUID] = (),
        batch: int = 100,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.tenant_id = principal.tenant_id
        self.filters = filters
        self.after = after
        self.batch = batch
        self.watch = list(watch)[:FOLLOWED_LIMIT]
        self._moving: OrderedDict[uuid.UUID, EventStatus] = OrderedDict()

    async def start_at_newest(self) -> None:
        async with self.sessionmaker() as session:
            self.after = await event_log.newest_event_id(session, self.tenant_id)

    async def prime(self) -> list[FeedItem]:
        """Start at the newest event unless resuming, and follow the `watch` events the client
        already shows (e.g. a page it loaded, or an event it just replayed).

        Answers the watched events' state as read now, as `updated` items: what the client
        shows may be older than this read (an event that settled between its page load or
        replay and this stream's start), so the stream's first messages always bring it up to
        date. The caller subscribes to change wake-ups before calling, so nothing that changes
        after this read is missed either.
        """
        if self.after is None:
            await self.start_at_newest()
        current: list[EventSummary] = []
        if self.watch:
            async with self.sessionmaker() as session:
                current = await event_log.event_statuses(session, self.tenant_id, self.watch)
            for event in current:
                self._track(event)
        return [FeedItem("updated", event) for event in current]

    async def poll(self) -> list[FeedItem]:
        items: list[FeedItem] = []
        async with self.sessionmaker() as session:
            if self._moving:
                current = await event_log.event_statuses(
                    session, self.tenant_id, list(self._moving)
                )
                for event in current:
                    if event.status != self._moving[event.id]:
                        items.append(FeedItem("updated", event))
                        self._track(event)
            created = await event_log.events_after(
                session, self.tenant_id, self.filters, after=self.after, limit=self.batch
            )
        for event in created:
            items.append(FeedItem("created", event))
            self._track(event)
            self.after = event.id
        return items

    def _track(self, event: EventSummary) -> None:
        self._moving.pop(event.id, None)
        if event.status in IN_MOTION:
            self._moving[event.id] = event.status
            while len(self._moving) > FOLLOWED_LIMIT:
                self._moving.popitem(last=False)

    async def follow(self, poll_seconds: float) -> AsyncIterator[list[FeedItem]]:
        """Yield each poll's changes (an empty list when nothing changed), forever."""
        while True:
            yield await self.poll()
            await asyncio.sleep(poll_seconds)
