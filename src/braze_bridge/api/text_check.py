"""One rule for all admin API text: no U+0000 and no unpaired surrogate, anywhere.

PostgreSQL cannot store U+0000 in text, and an unpaired surrogate (JSON `"\\ud800"`) cannot be
encoded as UTF-8, so either would fail deep in a query as a 500. This check runs before the
route on the decoded JSON body (keys and values), the query parameters and the path parameters,
and answers the first offender as a 422 naming it, in the same shape as other field errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import Depends, Request

from braze_bridge.api.deps import ContextDep, PrincipalDep
from braze_bridge.api.hooks import read_body_limited
from braze_bridge.domain.ids import unsendable_character
from braze_bridge.errors import ValidationFailed

MESSAGE = "must not contain U+0000 (NUL) or an unpaired UTF-16 surrogate"
ERROR_TYPE = "invalid_character"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def is_bad_text(value: str) -> bool:
    """The same rule as for identifiers at ingest: text Postgres and Braze cannot take."""
    return unsendable_character(value) is not None


def _printable(part: str) -> str:
    """A key as it can be shown back: the offending characters as `\\uXXXX` escapes."""
    return "".join(
        f"\\u{ord(ch):04x}" if ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in part
    )


def _bad_locations(value: Any, loc: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    if isinstance(value, str):
        if is_bad_text(value):
            yield loc
    elif isinstance(value, Mapping):
        for key, item in value.items():
            key_loc = (*loc, _printable(str(key)))
            if is_bad_text(str(key)):
                yield key_loc
            else:
                yield from _bad_locations(item, key_loc)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _bad_locations(item, (*loc, str(index)))


def reject_bad_text(value: Any, loc: tuple[str, ...] = ()) -> None:
    """Raise a 422 naming the first string (key or value) under `value` that breaks the rule."""
    for bad in _bad_locations(value, loc):
        raise ValidationFailed(
            f"invalid request: {'.'.join(bad) or 'body'}",
            details=[{"field": ".".join(bad), "message": MESSAGE, "type": ERROR_TYPE}],
        )


def reject_bad_params(request: Request) -> None:
    """The query and path parameters, named `query.<name>` / `path.<name>` as FastAPI does."""
    for key, item in request.query_params.multi_items():
        reject_bad_text({key: item}, ("query",))
    reject_bad_text(dict(request.path_params), ("path",))


async def check_admin_text(request: Request, _: PrincipalDep, context: ContextDep) -> None:
    """Router dependency of the admin API; runs after authentication (401 still comes first).

    A body that is not JSON is left to the route, which answers it in its own way (400).
    """
    reject_bad_params(request)
    if request.method not in BODY_METHODS:
        return
    raw = await read_body_limited(request, context.settings.max_body_bytes)
    request._body = raw  # Starlette's own cache: the route reads the same bytes again
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        return
    reject_bad_text(decoded)


CHECK_ADMIN_TEXT = Depends(check_admin_text)
