"""Who an email-only operation is in Braze (identity modes `lookup_then_alias` and `skip`):
Postgres cache, then `/users/export/ids`; and what braze-bridge created for an email.

docs/delivery.md, "Identity": a found profile is addressed by its `external_id` (or `braze_id`
when it has none), the one Braze would update when several share the email; a missing one
becomes an alias-only profile `{"alias_name": <email>, "alias_label": "email"}` (or is
skipped). Answers, "not found" included, are cached per connection; concurrent lookups of one
email in this process share one Braze call, and the Postgres cache spares other processes the
call once the answer is in. The same cache marks the emails braze-bridge created a profile for
and identified later (delivery/identify.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from braze_bridge import metrics
from braze_bridge.braze.client import EXPORT_IDS_PATH, BrazeClient, BrazeReply
from braze_bridge.braze.errors import Unreachable
from braze_bridge.braze.models import (
    EXPORT_LOOKUP_FIELDS,
    parse_export_users,
    profile_braze_would_update,
    reply_message,
    retry_after_seconds,
)
from braze_bridge.db.repositories import attempts as attempt_repo
from braze_bridge.db.repositories import identities as identity_repo
from braze_bridge.db.repositories.connections import DeliveryConnection
from braze_bridge.db.repositories.identities import KnownIdentity
from braze_bridge.delivery.ratelimit import Bucket, RateLimiter
from braze_bridge.domain.statuses import AttemptOutcome, IdentityStatus

EXPORT_FIELDS = EXPORT_LOOKUP_FIELDS


@dataclass(frozen=True, slots=True)
class Found:
    external_id: str | None
    braze_id: str | None

    def identifier(self) -> dict[str, str]:
        if self.external_id:
            return {"external_id": self.external_id}
        return {"braze_id": self.braze_id or ""}


@dataclass(frozen=True, slots=True)
class NoProfile:
    """Braze has no profile for this email (an alias-only one is created, or it is skipped)."""


@dataclass(frozen=True, slots=True)
class Unresolved:
    """No answer this time. `auth`: the key cannot export (hold the connection);
    `wait_seconds`: rate limited, ask again then; otherwise a transient failure (retry)."""

    reason: str
    auth: bool = False
    wait_seconds: float | None = None


Resolution = Found | NoProfile | Unresolved


def alias_identifier(email: str) -> dict[str, object]:
    """docs/delivery.md, "Identity": alias-only profile keyed by the email; created if absent."""
    return {
        "user_alias": {"alias_name": email, "alias_label": "email"},
        "_update_existing_only": False,
    }


class IdentityResolver:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        limiter: RateLimiter,
        *,
        worker_id: str,
        clock: Callable[[], datetime],
        found_ttl_seconds: float = 86_400.0,
        missing_ttl_seconds: float = 300.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._limiter = limiter
        self._worker_id = worker_id
        self._clock = clock
        self._found_ttl = found_ttl_seconds
        self._missing_ttl = missing_ttl_seconds
        self._inflight: dict[tuple[uuid.UUID, str], asyncio.Future[Resolution]] = {}
        self.lookups = 0  # Braze export/ids calls made by this process (benchmarks, tests)

    async def resolve_emails(
        self,
        connection: DeliveryConnection,
        client: BrazeClient,
        bucket: Bucket,
        emails: dict[str, list[int]],
    ) -> dict[str, Resolution]:
        """Resolve every email (lower-cased) to a Resolution; `emails` maps to operation ids."""
        async with self._sessionmaker() as session:
            cached = await identity_repo.get_cached_identities(session, connection.id, list(emails))
        answers: dict[str, Resolution] = {}
        for email, known in cached.items():
            answers[email] = (
                Found(known.external_id, known.braze_id)
                if known.status == IdentityStatus.FOUND
                else NoProfile()
            )
        missing = [email for email in emails if email not in answers]
        for _ in answers:
            metrics.identity_lookup(hit=True)
        for _ in missing:
            metrics.identity_lookup(hit=False)
        if missing:
            results = await asyncio.gather(
                *(
                    self._coalesced(connection, client, bucket, email, emails[email])
                    for email in missing
                )
            )
            answers.update(zip(missing, results, strict=True))
        return answers

    async def _coalesced(
        self,
        connection: DeliveryConnection,
        client: BrazeClient,
        bucket: Bucket,
        email: str,
        op_ids: list[int],
    ) -> Resolution:
        key = (connection.id, email)
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Resolution] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._lookup(connection, client, bucket, email, op_ids)
        except BaseException as exc:
            future.set_exception(exc)
            # Nobody else may be waiting; mark the exception as retrieved.
            future.exception()
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._inflight[key]

    async def _lookup(
        self,
        connection: DeliveryConnection,
        client: BrazeClient,
        bucket: Bucket,
        email: str,
        op_ids: Sequence[int],
    ) -> Resolution:
        permit = await self._limiter.acquire(bucket, 1)
        if permit.granted < 1:
            return Unresolved("export/ids rate limit reached", wait_seconds=permit.retry_in)
        body: dict[str, object] = {"email_address": email, "fields_to_export": EXPORT_FIELDS}
        started = self._clock()
        self.lookups += 1
        try:
            reply = await client.export_ids_by_email(email, EXPORT_FIELDS)
        except Unreachable as exc:
            await self.record_attempt(
                connection,
                EXPORT_IDS_PATH,
                body,
                started,
                None,
                str(exc),
                [(op_id, AttemptOutcome.LOOKUP_FAILED) for op_id in op_ids],
            )
            return Unresolved(f"export/ids: {exc}")
        parsed = reply.json()
        resolution: Resolution
        outcome = AttemptOutcome.LOOKUP_FAILED
        if reply.ok:
            # With several profiles for the email, the one Braze itself would update.
            chosen = profile_braze_would_update(parse_export_users(parsed))
            if chosen is None:
                resolution, outcome = NoProfile(), AttemptOutcome.NOT_FOUND
                known = KnownIdentity(email, IdentityStatus.NOT_FOUND, None, None)
                ttl = self._missing_ttl
            else:
                resolution, outcome = (
                    Found(chosen.external_id, chosen.braze_id),
                    AttemptOutcome.FOUND,
                )
                known = KnownIdentity(
                    email, IdentityStatus.FOUND, chosen.external_id, chosen.braze_id
                )
                ttl = self._found_ttl
            async with self._sessionmaker.begin() as session:
                await identity_repo.store_identity(session, connection.id, known, ttl_seconds=ttl)
        elif reply.status_code in (401, 403, 404):
            message = reply_message(parsed, "refused")
            resolution = Unresolved(
                f"braze {reply.status_code} on /users/export/ids: {message} (the API key needs "
                "the users.export.ids permission to resolve email-only users)",
                auth=True,
            )
        elif reply.status_code == 429:
            wait = retry_after_seconds(reply.headers, now_epoch=self._clock().timestamp())
            resolution = Unresolved("braze 429 on /users/export/ids", wait_seconds=wait or 60.0)
            outcome = AttemptOutcome.RATE_LIMITED
        else:
            resolution = Unresolved(
                f"braze {reply.status_code} on /users/export/ids: {reply_message(parsed, 'error')}"
            )
        await self.record_attempt(
            connection,
            EXPORT_IDS_PATH,
            body,
            started,
            reply,
            None,
            [(op_id, outcome) for op_id in op_ids],
        )
        return resolution

    async def record_attempt(
        self,
        connection: DeliveryConnection,
        endpoint: str,
        body: Mapping[str, object],
        started: datetime,
        answer: BrazeReply | None,
        error: str | None,
        outcomes: Sequence[tuple[int, AttemptOutcome]],
        *,
        identified: Mapping[str, str] | None = None,
    ) -> None:
        """One attempt of a lookup or identify call, shown on each operation it was for;
        `identified` (email → external id) is marked in the same transaction."""
        metrics.braze_request(endpoint, answer.status_code if answer else "error")
        record = attempt_repo.AttemptWrite(
            tenant_id=connection.tenant_id,
            connection_id=connection.id,
            endpoint=endpoint,
            worker_id=self._worker_id,
            request_json=json.dumps(body),
            status_code=answer.status_code if answer else None,
            response_body=answer.text if answer else None,
            response_headers=answer.headers if answer else None,
            error=error,
            duration_ms=answer.duration_ms if answer else 0.0,
            started_at=started,
            operations=list(outcomes),
        )
        async with self._sessionmaker.begin() as session:
            if identified:
                await identity_repo.mark_identified(session, connection.id, identified)
            await attempt_repo.record_attempts(session, [record])

    # -- what braze-bridge created, and identify later -------------------------------------------

    async def unidentified_created(
        self, connection: DeliveryConnection, emails: Sequence[str]
    ) -> dict[str, str]:
        """email → `alias` | `email`: profiles braze-bridge created that await an identify."""
        async with self._sessionmaker() as session:
            return await identity_repo.unidentified_created(session, connection.id, emails)

    async def mark_created(
        self, connection: DeliveryConnection, created: Mapping[str, str]
    ) -> None:
        """Braze accepted objects that create a profile for these emails (`alias` | `email`)."""
        if created:
            async with self._sessionmaker.begin() as session:
                await identity_repo.mark_created(session, connection.id, created)
