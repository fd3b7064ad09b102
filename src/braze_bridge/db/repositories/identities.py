"""Per-connection cache of what Braze's `/users/export/ids` said about an email, and what
braze-bridge created and identified for it.

Named SQL in `db/sql/identities.sql`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db import driver
from braze_bridge.domain.statuses import IdentityStatus


@dataclass(frozen=True, slots=True)
class KnownIdentity:
    email: str
    status: IdentityStatus
    external_id: str | None
    braze_id: str | None


async def get_cached_identities(
    session: AsyncSession, connection_id: uuid.UUID, emails: Sequence[str]
) -> dict[str, KnownIdentity]:
    """Unexpired answers for `emails` (lower-cased by the caller)."""
    if not emails:
        return {}
    rows = await driver.fetch(session, "cached_identities", connection_id, list(emails))
    return {row[0]: KnownIdentity(row[0], IdentityStatus(row[1]), row[2], row[3]) for row in rows}


async def store_identity(
    session: AsyncSession,
    connection_id: uuid.UUID,
    identity: KnownIdentity,
    *,
    ttl_seconds: float,
) -> None:
    await driver.execute(
        session,
        "store_identity",
        connection_id,
        identity.email,
        identity.status.value,
        identity.external_id,
        identity.braze_id,
        float(ttl_seconds),
    )


async def unidentified_created(
    session: AsyncSession, connection_id: uuid.UUID, emails: Sequence[str]
) -> dict[str, str]:
    """email → `alias` | `email` for the emails braze-bridge created a profile for and has not
    identified yet (`emails` lower-cased by the caller)."""
    if not emails:
        return {}
    rows = await driver.fetch(session, "unidentified_created", connection_id, list(emails))
    return {row[0]: row[1] for row in rows}


async def mark_created(
    session: AsyncSession, connection_id: uuid.UUID, created: Mapping[str, str]
) -> None:
    """Remember that Braze accepted objects that create a profile for these emails
    (email → `alias` | `email`); a mark already there is kept."""
    if not created:
        return
    emails = sorted(created)
    await driver.execute(
        session, "mark_created", connection_id, emails, [created[e] for e in emails]
    )


async def mark_identified(
    session: AsyncSession, connection_id: uuid.UUID, identified: Mapping[str, str]
) -> None:
    """Braze accepted `/users/identify` for these emails (email → external id)."""
    if not identified:
        return
    emails = sorted(identified)
    await driver.execute(
        session, "mark_identified", connection_id, emails, [identified[e] for e in emails]
    )
