"""Python CPU per webhook of the hook route's own work, in process: no HTTP, no database.

    .venv/bin/python bench/hook_cpu.py [--webhooks 5000] [--repeats 7] [--log-level info]
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python bench/hook_cpu.py   # A/B

Runs the API app (`create_app`) as an ASGI callable, as the `api` process runs it per
`POST /v1/hooks/{id}` after uvicorn parsed the request, with the connection lookup and the
event store replaced by stand-ins that answer at once: HMAC check, body read, JSON parse,
normalize, map, the event record, metrics and the answer. All webhooks of one repeat run in one
event-loop turn. Bodies are bench/ingest.py's `reward_fulfilled` webhooks and the documented
Extole shapes of tests/extole_bodies.py. Prints CPU µs per webhook
(`time.process_time`, best of `--repeats`), plus what turning the stored event into JSON
(`NormalizedEvent.as_json`, done by the group committer) adds.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import hashlib
import hmac
import json
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import ingest as bench  # the sibling bench: webhook bodies and secrets
from tests import extole_bodies

from braze_bridge.api import deps
from braze_bridge.app import create_app
from braze_bridge.config import Settings
from braze_bridge.db.repositories.connections import LiveConnection
from braze_bridge.db.repositories.ingest_batch import IngestRecord, StoreResult
from braze_bridge.domain.statuses import ConnectionState, Source, WebhookAuthMode
from braze_bridge.logging import configure_logging
from braze_bridge.runtime import Runtime
from braze_bridge.security.secrets import SecretBox


class InstantLookup:
    def __init__(self, connection: LiveConnection) -> None:
        self.connection = connection

    async def get(self, connection_id: uuid.UUID) -> LiveConnection | None:
        return self.connection if connection_id == self.connection.id else None


class InstantStore:
    """Keeps the records (so the JSON step can be timed apart) and answers without a database."""

    def __init__(self) -> None:
        self.records: list[IngestRecord] = []

    async def store(self, record: IngestRecord) -> StoreResult:
        self.records.append(record)
        return StoreResult(record.id, duplicate=False)


def make_connection(box: SecretBox) -> LiveConnection:
    return LiveConnection(
        id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        source=Source.EXTOLE,
        state=ConnectionState.ACTIVE,
        braze_app_id=None,
        webhook_auth_mode=WebhookAuthMode.HMAC_SHA256,
        webhook_username=None,
        webhook_secret_enc=box.encrypt(bench.WEBHOOK_SECRET),
        previous_webhook_secret_enc=None,
        previous_secret_expires_at=None,
        content_token_enc=None,
        # As bench/ingest.py seeds it; a fresh dict per request, as the lookup reads it.
        settings={"reward_states": ["EARNED", "FULFILLED"]},
        version=1,
    )


def signed_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    """The raw header pairs uvicorn hands the app for one signed webhook."""
    signature = hmac.new(bench.WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-extole-signature", signature.encode()),
    ]


Webhook = tuple[bytes, list[tuple[bytes, bytes]]]


def bench_app(connection: LiveConnection, box: SecretBox, store: InstantStore) -> Any:
    """The real app, its state set as the lifespan would, with the stand-ins in it."""
    settings = Settings()
    app = create_app(Runtime(settings, "postgresql://unused/db", bench.SECRET_KEY, embedded=False))
    built: dict[str, Any] = {
        "settings": settings,
        "engine": None,
        "sessionmaker": None,
        "http": None,
        "secrets": box,
        "event_store": store,
        "connection_lookup": InstantLookup(connection),
        "replay_runner": None,
        "replay_task": None,
    }
    fields = {field.name for field in dataclasses.fields(deps.AppContext)}
    for name in set(built) - fields:  # an older checkout kept these on app.state (A/B runs)
        setattr(app.state, name, built.pop(name))
    app.state.context = deps.AppContext(**built)
    return app


def webhook_runner(
    connection: LiveConnection, box: SecretBox, store: InstantStore
) -> Callable[[Webhook], Coroutine[Any, Any, int]]:
    """A function that answers one signed webhook through the app; its status."""
    app = bench_app(connection, box, store)
    path = f"/v1/hooks/{connection.id}"
    settings = orjson.dumps(connection.settings)

    async def answer(webhook: Webhook) -> int:
        body, headers = webhook
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        # The lookup reads the settings column afresh for every request.
        object.__setattr__(connection, "settings", orjson.loads(settings))
        await app(scope, receive, send)
        status: int = sent[0]["status"]
        return status

    return answer


def best_of(repeats: int, work: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--webhooks", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--log-level",
        default="warning",  # as bench/ingest.py starts the api process
        help="info includes the per-webhook log line (the default level of a real deployment)",
    )
    args = parser.parse_args()
    configure_logging(args.log_level)

    box = SecretBox(bench.SECRET_KEY)
    connection = make_connection(box)
    store = InstantStore()
    answer = webhook_runner(connection, box, store)

    documented = [
        json.dumps(body, separators=(",", ":")).encode()
        for body in extole_bodies.ALL_DOCUMENTED.values()
    ]
    shapes: dict[str, list[Webhook]] = {
        "bench reward_fulfilled": [
            (body, signed_headers(body))
            for body in (bench.webhook_body(n) for n in range(args.webhooks))
        ],
        "documented shapes (mix)": [
            (body, signed_headers(body))
            for body in (documented[n % len(documented)] for n in range(args.webhooks))
        ],
    }
    print(f"{sys.modules['braze_bridge'].__file__}")
    loop = asyncio.new_event_loop()
    for label, bodies in shapes.items():
        for webhook in bodies[: len(documented) * 2]:  # warm caches (settings, secrets, metrics)
            status = loop.run_until_complete(answer(webhook))
            if status != 200:
                raise SystemExit(f"{label}: answered {status}")
        store.records.clear()

        async def answer_all(webhooks: list[Webhook]) -> None:
            for webhook in webhooks:
                await answer(webhook)

        def run_all(webhooks: list[Webhook] = bodies) -> None:
            store.records.clear()
            loop.run_until_complete(answer_all(webhooks))

        total = best_of(args.repeats, run_all)
        normalized = [r.normalized for r in store.records if r.normalized is not None]

        def dump_all(events: list[Any] = normalized) -> None:
            for event in events:
                event.as_json()

        as_json = best_of(args.repeats, dump_all)
        print(
            f"  {label:<24} route {1e6 * total / len(bodies):6.1f} µs/webhook"
            f"   + as_json {1e6 * as_json / len(bodies):5.1f} µs"
        )


if __name__ == "__main__":
    main()
