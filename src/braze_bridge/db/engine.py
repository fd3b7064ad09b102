"""Async engine and session factory; the database URL comes from Settings or the embedded server."""

from __future__ import annotations

import ssl
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def asyncpg_url(url: str) -> str:
    """SQLAlchemy URL for asyncpg; `sslmode` (libpq's word) is dropped, see connect_args."""
    parts = urlsplit(url)
    scheme = "postgresql+asyncpg"
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "sslmode"]
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _connect_args(url: str) -> dict[str, object]:
    sslmode = dict(parse_qsl(urlsplit(url).query)).get("sslmode")
    if sslmode in ("require", "verify-ca", "verify-full"):
        return {"ssl": ssl.create_default_context() if sslmode != "require" else "require"}
    return {}


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=_connect_args(url),
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        exists = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not exists:
            return None
        revision: str | None = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        return revision


# The oldest PostgreSQL major version the schema and SQL are tested on (the test suite's
# server); the newest is the embedded one (README, "Requirements").
MIN_POSTGRES_MAJOR = 15


async def server_major_version(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        number = await conn.scalar(text("SHOW server_version_num"))
    return int(str(number)) // 10_000
