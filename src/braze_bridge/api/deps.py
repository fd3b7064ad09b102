"""Request dependencies: the app context, a session, and the authenticated principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from braze_bridge.config import Settings
from braze_bridge.db.repositories import tokens
from braze_bridge.delivery.worker import DeliveryWorker
from braze_bridge.domain.principal import Principal
from braze_bridge.errors import Forbidden, Unauthorized
from braze_bridge.ingest.event_store import EventStore
from braze_bridge.ingest.lookup import ConnectionLookup
from braze_bridge.ops.live_feed import FeedHub
from braze_bridge.security.secrets import SecretBox
from braze_bridge.security.tokens import hash_token


@dataclass
class AppContext:
    """Everything the lifespan built, one per process; routes reach it through `ContextDep`."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    secrets: SecretBox
    # Webhook writes share transactions (ingest/group_commit.py).
    event_store: EventStore
    connection_lookup: ConnectionLookup
    worker: DeliveryWorker | None = None  # `braze-bridge serve` only
    # One LISTEN for every open live feed stream (ops/live_feed.py).
    live_feed: FeedHub | None = None


# Async on purpose: FastAPI runs a plain `def` dependency in its thread pool.
async def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_session(context: ContextDep) -> AsyncIterator[AsyncSession]:
    """A plain session; services commit their own unit of work before the route answers."""
    async with context.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


# Declares the bearer scheme in /openapi.json (securitySchemes and each route's `security`);
# `authenticate` reads the header itself so every failure answers in the contract's shape.
BEARER_SCHEME = HTTPBearer(auto_error=False, description="An admin token: bbo_… or bbt_…")


async def authenticate(
    request: Request,
    context: ContextDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_SCHEME)],
) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("missing bearer token: send Authorization: Bearer <token>")
    async with context.sessionmaker() as session:
        principal = await tokens.principal_for(session, hash_token(token))
        if principal is not None:
            await tokens.touch_if_stale(session, principal.token_id)
            await session.commit()
    if principal is None:
        raise Unauthorized("invalid or revoked token")
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def require_operator(principal: PrincipalDep) -> Principal:
    if not principal.is_operator:
        raise Forbidden("this route needs an operator token")
    return principal


OperatorDep = Annotated[Principal, Depends(require_operator)]
