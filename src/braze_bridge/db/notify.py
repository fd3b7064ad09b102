"""The outbox wake-up channel: ingest NOTIFYs inside its transaction, workers LISTEN."""

from __future__ import annotations

OUTBOX_CHANNEL = "braze_bridge_outbox"
