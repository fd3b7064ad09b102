"""Webhook bodies as JSON: strict (UTF-8, optional BOM, no NaN/Infinity), errors with positions.

One parser for every path that reads a stored or received body (ingest, preview, replay), so
what ingest stored is read back alike.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable
from typing import Any

from braze_bridge.errors import InvalidJson


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every body: `json.loads(..., parse_constant=...)` builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# The decoder's own value scanner: what `decode` runs once it has skipped leading whitespace.
_SCAN_VALUE: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _position(text: str, pos: int) -> dict[str, int]:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return {"line": line, "column": column, "position": pos}


def parse_json_body(body: bytes) -> Any:
    """Strict JSON (UTF-8, optional BOM; no NaN/Infinity); InvalidJson names the position."""
    if not body.startswith(codecs.BOM_UTF8):
        # The common case, read without the general path's overhead (~2 µs): the "utf-8-sig"
        # codec is a Python-level wrapper, and `decode` matches whitespace before and after
        # the value. Anything else (leading or trailing whitespace, errors) takes that path.
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(body, exc) from None
        try:
            value, end = _SCAN_VALUE(text, 0)
        except (StopIteration, ValueError, RecursionError):
            pass
        else:
            if end == len(text):
                return value
        return _decode_text(text)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(body, exc) from None
    return _decode_text(text)


def _not_utf8(body: bytes, exc: UnicodeDecodeError) -> InvalidJson:
    prefix = body[: exc.start].decode("utf-8", errors="replace")
    return InvalidJson("body is not valid UTF-8", details=_position(prefix, len(prefix)))


def _decode_text(text: str) -> Any:
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
