"""GET /v1/content/{connection_id}/{external_id}: the Connected Content endpoint Braze calls.

Braze waits at most 2 s and caches GET answers per URL (5 min by default, `:cache_max_age` to
change); the answer is one primary-key read. `Cache-Control: private, max-age=300` matches that
default and keeps shared proxies from holding one user's coupon codes; the ETag lets any client
revalidate for free.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from braze_bridge.api.deps import ContextDep, bearer_token
from braze_bridge.api.text_check import reject_bad_params
from braze_bridge.db.repositories.content import get_content
from braze_bridge.errors import ErrorBody, NotFound, Unauthorized
from braze_bridge.ingest import service

router = APIRouter(tags=["connected content"])

CACHE_CONTROL = "private, max-age=300"


@router.get(
    "/v1/content/{connection_id}/{external_id}",
    responses={
        200: {"description": "{share_link, share_code, rewards: [...]}"},
        304: {"description": "unchanged since the ETag sent in If-None-Match"},
        401: {"model": ErrorBody, "description": "missing or wrong content token"},
        404: {"model": ErrorBody, "description": "unknown connection or user"},
        422: {"model": ErrorBody, "description": "U+0000 or an unpaired surrogate in the id"},
    },
)
async def get_user_content(
    connection_id: str, external_id: str, request: Request, context: ContextDep
) -> Response:
    connection = await service.find_connection(
        context.engine, service.parse_connection_id(connection_id)
    )
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("missing bearer token: send Authorization: Bearer <content token>")
    if connection.content_token_enc is None:
        raise Unauthorized("this connection has no content token")
    expected = context.secrets.decrypt(connection.content_token_enc)
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("content token is not valid")
    reject_bad_params(request)
    async with AsyncSession(context.engine) as session:
        view = await get_content(session, connection.id, external_id)
    if view is None:
        raise NotFound("no content for this user", details={"external_id": external_id[:255]})
    document: dict[str, Any] = {
        "share_link": view.share_link,
        "share_code": view.share_code,
        "rewards": view.rewards,
    }
    payload = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag, "Vary": "Authorization"}
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(payload, media_type="application/json", headers=headers)
