"""Helpers shared by the admin routers: ids in paths and declared error responses."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends

from braze_bridge.api.deps import PrincipalDep
from braze_bridge.errors import ErrorBody, NotFound

_DESCRIPTIONS = {
    400: "The body is not valid JSON",
    401: "Missing, invalid or revoked bearer token",
    403: "The route needs an operator token",
    404: "No such object, or it belongs to another tenant",
    409: "Conflicts with an existing object",
    413: "The body is larger than BRAZE_BRIDGE_MAX_BODY_BYTES",
    422: "Invalid request; `details` names each field",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the contract's error body, so /openapi.json tells the truth."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}


# A route with a JSON body can also answer these two before looking at its fields.
BODY_ERRORS = (400, 413)


def parse_id(value: str, what: str) -> uuid.UUID:
    """A path id that is not a UUID names nothing that exists: 404, like any unknown id."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"no {what} {value}") from None


async def connection_id_path(connection_id: str, _authenticated: PrincipalDep) -> uuid.UUID:
    """`{connection_id}` of an admin route, read after authentication (a bad token answers 401
    whatever the path). Whether the principal may see it is the use case's check (it loads the
    row, locked when it changes it): both answer the same 404."""
    return parse_id(connection_id, "connection")


ConnectionIdPath = Annotated[uuid.UUID, Depends(connection_id_path)]
