"""Admin tokens: look up by hash, create, ensure the bootstrap token."""

from __future__ import annotations

import uuid

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.db.models import ApiToken
from braze_bridge.domain.principal import Principal


async def principal_for(session: AsyncSession, token_hash: bytes) -> Principal | None:
    row = (
        await session.execute(
            select(ApiToken.id, ApiToken.tenant_id).where(
                ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None:
        return None
    return Principal(token_id=row.id, tenant_id=row.tenant_id)


async def create_token(
    session: AsyncSession, *, name: str, tenant_id: uuid.UUID | None, token_hash: bytes, prefix: str
) -> ApiToken:
    """Store a token by its hash; the caller shows the plaintext once."""
    row = ApiToken(name=name, tenant_id=tenant_id, token_hash=token_hash, prefix=prefix)
    session.add(row)
    await session.flush()
    return row


async def ensure_bootstrap_token(session: AsyncSession, token_hash: bytes, prefix: str) -> None:
    """An operator token with exactly this value exists afterwards; safe to run on every start."""
    await session.execute(
        insert(ApiToken)
        .values(
            id=uuid.uuid4(),
            tenant_id=None,
            name="bootstrap",
            token_hash=token_hash,
            prefix=prefix,
            is_bootstrap=True,
        )
        .on_conflict_do_nothing(index_elements=[ApiToken.token_hash])
    )


async def touch(session: AsyncSession, token_id: uuid.UUID) -> None:
    await session.execute(
        update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=func.now())
    )


async def touch_if_stale(
    session: AsyncSession, token_id: uuid.UUID, *, every_seconds: int = 60
) -> None:
    """Record use at most once per `every_seconds`, so polling clients do not write per call."""
    await session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(
                ApiToken.last_used_at.is_(None),
                ApiToken.last_used_at
                < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, every_seconds),
            ),
        )
        .values(last_used_at=func.now())
    )


async def list_for_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> list[ApiToken]:
    """The tenant's tokens that still work, oldest first (hashes stay in the database)."""
    stmt = (
        select(ApiToken)
        .where(ApiToken.tenant_id == tenant_id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.created_at, ApiToken.id)
    )
    return list((await session.scalars(stmt)).all())


async def revoke(session: AsyncSession, *, tenant_id: uuid.UUID, token_id: uuid.UUID) -> bool:
    """Revoke one of the tenant's live tokens; False when there is no such token."""
    result = await session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            ApiToken.tenant_id == tenant_id,
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
        .returning(ApiToken.id)
    )
    return result.first() is not None
