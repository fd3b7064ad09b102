"""Every Prometheus collector of braze-bridge, named in one place, and the helpers that move them.

Names follow `braze_bridge_<noun>_<unit>[_total]`. Counters and histograms live in process
memory, or in `PROMETHEUS_MULTIPROC_DIR` when that variable is set (prometheus-client reads it
at import), so `api` and `worker` processes started apart add up in one scrape. Queue depth
and oldest age are not process state at all: they are read from Postgres at scrape time
(`render_latest`), so every process reports the same truth.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST"]

# prometheus-client switches to file-backed values when this is set; we follow the same switch
# to decide how to collect (the library's own variable, hence not in Settings).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def process_identifier() -> str:
    """Names this process's files in the multiprocess dir: host and pid, since containers
    sharing one dir (compose's api and worker) all run their command as pid 1, and two
    processes writing one file corrupt each other's counters. `_` separates the parts of
    prometheus-client's file names, so it is kept out."""
    return f"{socket.gethostname().replace('_', '-')}-{os.getpid()}"


if os.environ.get(MULTIPROC_ENV):
    # Before any collector below is created: each takes its value class at creation.
    prometheus_values.ValueClass = prometheus_values.MultiProcessValue(process_identifier)  # type: ignore[no-untyped-call]

WEBHOOKS_RECEIVED = Counter(
    "braze_bridge_webhooks_received_total",
    "Webhooks received, by connection, normalized kind and outcome: accepted (queued for "
    "Braze), duplicate, filtered, rejected, or the error code of a refusal (unauthorized, "
    "payload_too_large, unsupported_media_type, invalid_json).",
    ["connection_id", "kind", "outcome"],
)
WEBHOOKS_ABORTED = Counter(
    "braze_bridge_webhooks_aborted_total",
    "Webhooks whose client disconnected before its body had fully arrived (nothing stored).",
    ["connection_id"],
)
HTTP_CONNECTIONS_REFUSED = Counter(
    "braze_bridge_http_connections_refused_total",
    "Connections answered 429 and closed before any request was read, by reason: "
    "per_client_cap (the peer address already held its maximum of open connections).",
    ["reason"],
)
BRAZE_REQUESTS = Counter(
    "braze_bridge_braze_requests_total",
    "HTTP requests sent to Braze, by endpoint path and status code ('error' when no response).",
    ["endpoint", "status"],
)
OBJECTS_DELIVERED = Counter(
    "braze_bridge_objects_delivered_total",
    "Braze objects settled as delivered.",
    ["connection_id"],
)
OBJECTS_FAILED = Counter(
    "braze_bridge_objects_failed_total",
    "Braze objects settled as failed (Braze refused the object).",
    ["connection_id"],
)
OBJECTS_DEAD = Counter(
    "braze_bridge_objects_dead_total",
    "Braze objects that exhausted the retry horizon.",
    ["connection_id"],
)
DELIVERY_LATENCY = Histogram(
    "braze_bridge_delivery_latency_seconds",
    "Time from webhook receipt to the Braze 2xx that delivered the object.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
)
IDENTITY_LOOKUPS = Counter(
    "braze_bridge_identity_lookups_total",
    "Email → Braze profile resolutions, by result: 'hit' (answered by the cache) or 'miss' "
    "(needed /users/export/ids; those calls are also in braze_bridge_braze_requests_total).",
    ["result"],
)
RATE_LIMIT_WAIT = Histogram(
    "braze_bridge_rate_limit_wait_seconds",
    "Time a worker held a request back for a Braze rate limit (budget or 429 Retry-After).",
    buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
REPLAYED_OBJECTS = Counter(
    "braze_bridge_replayed_objects_total",
    "Braze objects set back to pending by a replay (delivered objects are never replayed).",
)
RETENTION_PURGED = Counter(
    "braze_bridge_retention_purged_rows_total",
    "Rows removed by retention, by table (event_bodies, delivery_attempts, replay_jobs).",
    ["table"],
)

_OBJECTS_BY_STATUS = {
    "delivered": OBJECTS_DELIVERED,
    "failed": OBJECTS_FAILED,
    "dead": OBJECTS_DEAD,
}


# The counter of each label combination seen, as `labels()` returns it, so that its validation
# and lock are paid once per combination rather than on every webhook.
_WEBHOOK_COUNTERS: dict[tuple[str | uuid.UUID, str | None, str], Counter] = {}


def webhook_aborted(connection_id: str | uuid.UUID) -> None:
    """Ingest: the client hung up mid-body; no answer is possible and nothing was stored."""
    WEBHOOKS_ABORTED.labels(str(connection_id)).inc()


def http_connection_refused(reason: str) -> None:
    """HTTP server: a connection refused at accept time (see `braze_bridge.http_server`)."""
    HTTP_CONNECTIONS_REFUSED.labels(reason).inc()


def webhook_received(connection_id: str | uuid.UUID, kind: str | None, outcome: str) -> None:
    """Ingest: one call per webhook, after its transaction committed (or was refused)."""
    key = (connection_id, kind, outcome)
    counter = _WEBHOOK_COUNTERS.get(key)
    if counter is None:
        counter = WEBHOOKS_RECEIVED.labels(str(connection_id), kind or "unknown", outcome)
        _WEBHOOK_COUNTERS[key] = counter
    counter.inc()


def braze_request(endpoint: str, status: int | str) -> None:
    """Delivery: one call per HTTP request to Braze; `status` is the code or 'error'."""
    BRAZE_REQUESTS.labels(endpoint, str(status)).inc()


def objects_settled(connection_id: str, status: str, count: int = 1) -> None:
    """Delivery: objects settled as `delivered`, `failed` or `dead` (other words are ignored)."""
    counter = _OBJECTS_BY_STATUS.get(str(status))
    if counter is not None and count > 0:
        counter.labels(str(connection_id)).inc(count)


def delivery_latency(seconds: float) -> None:
    """Delivery: receipt → Braze 2xx, once per delivered object."""
    DELIVERY_LATENCY.observe(max(seconds, 0.0))


def delivery_latencies(seconds: Sequence[float]) -> None:
    """Delivery: `delivery_latency` for every object of a round."""
    for value in seconds:
        delivery_latency(value)


def identity_lookup(*, hit: bool) -> None:
    IDENTITY_LOOKUPS.labels("hit" if hit else "miss").inc()


def rate_limit_wait(seconds: float) -> None:
    if seconds > 0:
        RATE_LIMIT_WAIT.observe(seconds)


def objects_replayed(count: int) -> None:
    if count > 0:
        REPLAYED_OBJECTS.inc(count)


def rows_purged(table: str, count: int) -> None:
    if count > 0:
        RETENTION_PURGED.labels(table).inc(count)


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """Unsettled objects of one connection, read from the database at scrape time."""

    connection_id: str
    depth: int
    oldest_age_seconds: float


class QueueCollector(Collector):
    """Gauges built from a snapshot; one per scrape, never registered globally."""

    def __init__(self, snapshots: Iterable[QueueSnapshot]) -> None:
        self._snapshots = list(snapshots)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "braze_bridge_queue_depth_objects",
            "Braze objects pending or in flight, per connection.",
            labels=["connection_id"],
        )
        oldest = GaugeMetricFamily(
            "braze_bridge_queue_oldest_age_seconds",
            "Age of the oldest unsettled Braze object, per connection (0 when none).",
            labels=["connection_id"],
        )
        for snap in self._snapshots:
            depth.add_metric([snap.connection_id], snap.depth)
            oldest.add_metric([snap.connection_id], snap.oldest_age_seconds)
        yield depth
        yield oldest


def process_registry() -> CollectorRegistry:
    """The registry to expose: this process's, or every process's under multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def render_latest(snapshots: Iterable[QueueSnapshot]) -> bytes:
    """The text exposition: process counters plus the database gauges of this scrape."""
    database = CollectorRegistry(auto_describe=False)
    database.register(QueueCollector(snapshots))
    return generate_latest(process_registry()) + generate_latest(database)
