"""Identify later: `/users/identify` before a user's next `/users/track` object.

docs/delivery.md, "Identify later": when an operation arrives with an external id and an email
for which braze-bridge earlier created an alias-only profile (identity mode
`lookup_then_alias`) or sent objects by the email identifier (mode `email`), Braze is asked to
identify that profile with the external id first, so the person ends with one profile:
`aliases_to_identify` for an alias, `emails_to_identify` with `prioritization`
`["unidentified", "most_recently_updated"]` for an email-only profile
(braze-inc/braze-docs `_docs/_api/endpoints/user_data/post_user_identify.md`).

Up to 50 identifications per request, under the workspace's shared identify / alias / merge /
delete budget. Per-user order covers the call: until Braze accepts it, none of that user's
objects of the round goes out (they retry, wait for the budget, or are held on an auth error).
Once accepted, the email is marked identified in the identity cache and never identified again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from braze_bridge.braze.client import IDENTIFY_PATH, BrazeClient
from braze_bridge.braze.errors import Unreachable
from braze_bridge.braze.models import reply_message, retry_after_seconds
from braze_bridge.db.repositories.connections import DeliveryConnection
from braze_bridge.db.repositories.outbox import ClaimedOperation, SettleRow
from braze_bridge.delivery.identity import IdentityResolver
from braze_bridge.delivery.ratelimit import Bucket, RateLimiter
from braze_bridge.delivery.settlement import RetryRequest, RoundOutcome
from braze_bridge.domain.statuses import AttemptOutcome, OperationStatus

MAX_IDENTIFY_PER_REQUEST = 50
# Merge the unidentified profile with this email; none or several: Braze merges nothing.
EMAIL_PRIORITIZATION = ["unidentified", "most_recently_updated"]
ALIAS_LABEL = "email"


@dataclass(frozen=True, slots=True)
class Identification:
    email: str
    created_as: str  # "alias" | "email"
    external_id: str
    user_key: str

    def entry(self) -> dict[str, object]:
        if self.created_as == "alias":
            return {
                "external_id": self.external_id,
                "user_alias": {"alias_name": self.email, "alias_label": ALIAS_LABEL},
            }
        return {
            "external_id": self.external_id,
            "email": self.email,
            "prioritization": list(EMAIL_PRIORITIZATION),
        }


def identify_body(batch: Sequence[Identification]) -> dict[str, list[dict[str, object]]]:
    body: dict[str, list[dict[str, object]]] = {}
    for item in batch:
        key = "aliases_to_identify" if item.created_as == "alias" else "emails_to_identify"
        body.setdefault(key, []).append(item.entry())
    return body


@dataclass(slots=True)
class IdentifyOutcome:
    """What identify did to the round: settled operations, and which wait (not to be sent)."""

    outcome: RoundOutcome
    waiting: set[int] = field(default_factory=set)


def plan(ops: Sequence[ClaimedOperation], pending: Mapping[str, str]) -> list[Identification]:
    """One identification per pending email: the first operation (claim order) with an
    external id that names it."""
    planned: dict[str, Identification] = {}
    for op in ops:
        if not (op.external_id and op.email):
            continue
        email = op.email.strip().lower()
        created_as = pending.get(email)
        if created_as is not None and email not in planned:
            planned[email] = Identification(email, created_as, op.external_id, op.user_key)
    return list(planned.values())


async def identify_before_track(
    connection: DeliveryConnection,
    client: BrazeClient,
    ops: Sequence[ClaimedOperation],
    *,
    resolver: IdentityResolver,
    limiter: RateLimiter,
    bucket: Bucket,
    http_slots: asyncio.Semaphore,
    stop: asyncio.Event,
    clock: Callable[[], datetime],
) -> IdentifyOutcome:
    """Identify what must be identified before these operations go out."""
    emails = sorted({op.email.strip().lower() for op in ops if op.external_id and op.email})
    if not emails:
        return IdentifyOutcome(RoundOutcome(connection))
    pending = await resolver.unidentified_created(connection, emails)
    planned = plan(ops, pending)
    if not planned:
        return IdentifyOutcome(RoundOutcome(connection))
    by_user: dict[str, list[ClaimedOperation]] = {}
    for op in ops:
        by_user.setdefault(op.user_key, []).append(op)
    batches = [
        planned[i : i + MAX_IDENTIFY_PER_REQUEST]
        for i in range(0, len(planned), MAX_IDENTIFY_PER_REQUEST)
    ]
    permit = await limiter.acquire(bucket, len(batches), stop)
    rows: list[SettleRow] = []
    retries: list[RetryRequest] = []
    waiting: set[int] = set()
    later = clock() + timedelta(seconds=permit.retry_in)
    for batch in batches[permit.granted :]:
        # The budget is spent: these users wait for it; no attempt is burned.
        for op in _ops_of(batch, by_user):
            waiting.add(op.id)
            rows.append(
                SettleRow(
                    op.id, OperationStatus.PENDING, reason="identify rate limit", available_at=later
                )
            )
    results = await asyncio.gather(
        *(
            _send(connection, client, batch, by_user, resolver, http_slots, clock)
            for batch in batches[: permit.granted]
        )
    )
    auth_error: str | None = None
    for result in results:
        waiting |= result.waiting
        rows += result.outcome.rows
        retries += result.outcome.retries
        auth_error = result.outcome.auth_error or auth_error
    return IdentifyOutcome(
        RoundOutcome(connection, tuple(rows), tuple(retries), auth_error=auth_error), waiting
    )


def _ops_of(
    batch: Sequence[Identification], by_user: Mapping[str, list[ClaimedOperation]]
) -> list[ClaimedOperation]:
    users = dict.fromkeys(item.user_key for item in batch)
    return [op for user in users for op in by_user[user]]


async def _send(
    connection: DeliveryConnection,
    client: BrazeClient,
    batch: Sequence[Identification],
    by_user: Mapping[str, list[ClaimedOperation]],
    resolver: IdentityResolver,
    http_slots: asyncio.Semaphore,
    clock: Callable[[], datetime],
) -> IdentifyOutcome:
    body = identify_body(batch)
    carried = _ops_of(batch, by_user)
    started = clock()
    try:
        async with http_slots:
            reply = await client.post(IDENTIFY_PATH, body)
    except Unreachable as exc:
        await resolver.record_attempt(
            connection,
            IDENTIFY_PATH,
            body,
            started,
            None,
            str(exc),
            [(op.id, AttemptOutcome.RETRY) for op in carried],
        )
        reason = f"/users/identify: {exc}"
        return IdentifyOutcome(
            RoundOutcome(
                connection,
                retries=tuple(RetryRequest(op, reason, AttemptOutcome.RETRY) for op in carried),
            ),
            {op.id for op in carried},
        )
    if reply.ok:
        await resolver.record_attempt(
            connection,
            IDENTIFY_PATH,
            body,
            started,
            reply,
            None,
            [(op.id, AttemptOutcome.IDENTIFIED) for op in carried],
            identified={item.email: item.external_id for item in batch},
        )
        return IdentifyOutcome(RoundOutcome(connection))
    message = reply_message(reply.json(), "error")
    reason = f"braze {reply.status_code} on /users/identify: {message}"
    waiting = {op.id for op in carried}
    if reply.status_code in (401, 403, 404):
        reason += " (the API key needs the users.identify permission)"
        outcome = AttemptOutcome.HELD
        settled = RoundOutcome(
            connection,
            tuple(SettleRow(op.id, OperationStatus.PENDING, reason=reason) for op in carried),
            auth_error=reason,
        )
    elif reply.status_code == 429:
        wait = retry_after_seconds(reply.headers, now_epoch=clock().timestamp()) or 60.0
        outcome = AttemptOutcome.RATE_LIMITED
        at = clock() + timedelta(seconds=wait)
        settled = RoundOutcome(
            connection,
            tuple(
                SettleRow(op.id, OperationStatus.PENDING, reason=reason, available_at=at)
                for op in carried
            ),
        )
    else:
        outcome = AttemptOutcome.RETRY
        settled = RoundOutcome(
            connection,
            retries=tuple(RetryRequest(op, reason, AttemptOutcome.RETRY) for op in carried),
        )
    await resolver.record_attempt(
        connection,
        IDENTIFY_PATH,
        body,
        started,
        reply,
        None,
        [(op.id, outcome) for op in carried],
    )
    return IdentifyOutcome(settled, waiting)
