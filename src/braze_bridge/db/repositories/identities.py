"""Per-connection cache of what Braze's `/users/export/ids` said about an email."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

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
    result = await session.execute(
        text(
            """
SELECT email, status, external_id, braze_id FROM identities
WHERE connection_id = :connection_id AND email = ANY(CAST(:emails AS text[]))
  AND expires_at > now()
"""
        ),
        {"connection_id": connection_id, "emails": list(emails)},
    )
    return {
        row[0]: KnownIdentity(row[0], IdentityStatus(row[1]), row[2], row[3])
        for row in result.all()
    }


async def store_identity(
    session: AsyncSession,
    connection_id: uuid.UUID,
    identity: KnownIdentity,
    *,
    ttl_seconds: float,
) -> None:
    await session.execute(
        text(
            """
INSERT INTO identities (connection_id, email, status, external_id, braze_id, resolved_at,
                        expires_at)
VALUES (:connection_id, :email, :status, :external_id, :braze_id, now(),
        now() + make_interval(secs => :ttl))
ON CONFLICT (connection_id, email) DO UPDATE
SET status = EXCLUDED.status, external_id = EXCLUDED.external_id,
    braze_id = EXCLUDED.braze_id, resolved_at = EXCLUDED.resolved_at,
    expires_at = EXCLUDED.expires_at
"""
        ),
        {
            "connection_id": connection_id,
            "email": identity.email,
            "status": identity.status.value,
            "external_id": identity.external_id,
            "braze_id": identity.braze_id,
            "ttl": ttl_seconds,
        },
    )
