"""Braze client errors.

* BrazeError
  + Unreachable     timeouts, connection and TLS errors (wraps httpx.TransportError)

HTTP answers (2xx, 4xx, 5xx) are not exceptions: they come back as `BrazeReply` so the
delivery engine can record every attempt and classify it (delivery/ owns the policy).
"""

from __future__ import annotations


class BrazeError(Exception):
    """Base of everything the Braze client raises."""


class Unreachable(BrazeError):
    """No HTTP answer: timeout, DNS, connection refused, TLS."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout
