"""Webhook bodies as JSON: strict (UTF-8, optional BOM, no NaN/Infinity), errors with positions.

One parser for every path that reads a stored or received body (ingest, preview, replay), so
what ingest stored is read back alike.

The values are the standard library's (`json`): integers of any size stay exact integers, and
a number too large for Braze is refused later, by the mapping, with a reason on the stored event
(a body is stored whenever it is JSON). orjson reads integers beyond 64 bits as floats (the
digits silently change) and refuses numbers beyond a double's range, so it only reads bodies
whose every digit run is shorter than 19 digits (the common case: no integer can reach 64 bits).
Any other body, and any body orjson refuses, is read by the standard library, whose answer (the
value, or the error and its position) is the contract.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from braze_bridge.errors import InvalidJson

# A digit run this long may be an integer orjson cannot hold exactly (beyond -2**63 .. 2**64-1).
# Found as a substring of the body with every digit mapped to "0" and every other byte to " "
# (two C-level passes; a regular expression scans each digit run again from every position).
_DIGITS_ONLY = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_RUN = b"0" * 19


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every body: `json.loads(..., parse_constant=...)` builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _position(text: str, pos: int) -> dict[str, int]:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return {"line": line, "column": column, "position": pos}


def parse_json_body(body: bytes) -> Any:
    """Strict JSON (UTF-8, optional BOM; no NaN/Infinity); InvalidJson names the position."""
    if _LONG_RUN not in body.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # a BOM, or an error the standard library names (as below)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = body[: exc.start].decode("utf-8", errors="replace")
        raise InvalidJson(
            "body is not valid UTF-8", details=_position(prefix, len(prefix))
        ) from None
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidJson(
            f"body is not valid JSON: {exc.msg}",
            details={"line": exc.lineno, "column": exc.colno, "position": exc.pos},
        ) from None
    except RecursionError:
        raise InvalidJson("body is not valid JSON: nested too deeply", details=None) from None
    except ValueError as exc:  # NaN/Infinity, integers longer than Python parses
        raise InvalidJson(f"body is not valid JSON: {exc}", details=None) from None
