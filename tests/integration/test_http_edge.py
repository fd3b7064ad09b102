"""The HTTP edge of POST /v1/hooks/{connection_id}: what is kept of a webhook's headers, and
how long a slow client may hold a connection to the real server."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import structlog
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message

from braze_bridge.db.models import EventBody
from braze_bridge.security.webhook_auth import sign_hmac_sha256
from tests import extole_bodies as bodies
from tests.conftest import TEST_SECRET_KEY
from tests.factories import BOX, MadeConnection, make_connection, make_tenant
from tests.integration.hooks_helpers import post_signed, raw
from tests.support.processes import running_api

PREVIOUS_SECRET = "whsec_previous-0123456789abcdef0123456789"


async def grace_connection(session: AsyncSession) -> MadeConnection:
    """A connection whose secret was rotated an hour ago, the old one still valid for a day."""
    tenant = await make_tenant(session)
    return await make_connection(
        session,
        tenant,
        previous_webhook_secret_enc=BOX.encrypt(PREVIOUS_SECRET),
        previous_secret_expires_at=datetime.now(UTC) + timedelta(days=1),
    )


class TestStoredHeaders:
    async def test_secret_in_custom_headers_is_neither_stored_nor_shown(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        operator_headers: dict[str, str],
    ) -> None:
        connection = await grace_connection(session)
        current = connection.webhook_secret
        sent = {
            "X-Auth": current,
            "X-Api-Key": current,
            "X-Webhook-Secret": PREVIOUS_SECRET,
            "X-Extole-Client-Key": current,
            "X-Sig": current,
            "X-Custom": f"whsec-in-{current}",
            "X-Other": f"prefix {PREVIOUS_SECRET} suffix",
            # An allowlisted name does not make a secret value storable.
            "User-Agent": f"partner/1.0 ({current})",
            "X-Request-Id": "req-42",
        }

        response = await post_signed(client, connection, bodies.REWARD_FULFILLED_RAW, headers=sent)

        assert response.status_code == 200
        event_id = response.json()["event_id"]
        detail = await client.get(f"/v1/events/{event_id}", headers=operator_headers)
        assert detail.status_code == 200
        for secret in (current, PREVIOUS_SECRET):
            assert secret not in detail.text
        shown = detail.json()["raw"]["headers"]
        assert shown["x-request-id"] == "req-42"
        assert shown["content-type"] == "application/json"
        assert not {"x-auth", "x-sig", "x-custom", "user-agent", "x-extole-signature"} & set(shown)

        stored = await session.get(EventBody, uuid.UUID(event_id))
        assert stored is not None
        assert stored.headers == {
            "content-type": "application/json",
            "content-length": str(len(bodies.REWARD_FULFILLED_RAW)),
            "x-request-id": "req-42",
        }

    async def test_event_detail_hides_custom_headers_of_rows_stored_before_the_allowlist(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        operator_headers: dict[str, str],
    ) -> None:
        connection = await grace_connection(session)
        response = await post_signed(client, connection, bodies.REWARD_FULFILLED_RAW)
        event_id = response.json()["event_id"]
        stored = await session.get(EventBody, uuid.UUID(event_id))
        assert stored is not None
        stored.headers = {"content-type": "application/json", "x-sig": "old-leak"}
        await session.commit()

        detail = await client.get(f"/v1/events/{event_id}", headers=operator_headers)

        assert detail.json()["raw"]["headers"] == {"content-type": "application/json"}


# Short limits for the real server, so a test waits seconds, not the defaults.
HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0


@pytest.fixture
def api_port(database_url: str) -> Iterator[int]:
    """`braze-bridge api` on the test database, with short HTTP limits."""
    with running_api(
        database_url,
        TEST_SECRET_KEY,
        BRAZE_BRIDGE_HTTP_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT_S),
        BRAZE_BRIDGE_HTTP_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT_S),
    ) as port:
        yield port


def read_until_closed(sock: socket.socket, wait_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took (bounded)."""
    started = time.monotonic()
    sock.settimeout(wait_s)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received, time.monotonic() - started


@pytest.mark.slow
class TestSlowClients:
    async def test_a_body_shorter_than_its_content_length_gets_408_and_a_close(
        self, session: AsyncSession, api_port: int
    ) -> None:
        tenant = await make_tenant(session)
        connection = await make_connection(session, tenant)
        head = (
            f"POST /v1/hooks/{connection.id} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", api_port)) as sock:
            sock.sendall(head.encode() + b'{"a": 1234')
            received, took = read_until_closed(sock, wait_s=BODY_TIMEOUT_S + 5)

        assert took < BODY_TIMEOUT_S + 3
        status_line, _, rest = received.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 408 Request Timeout"
        headers, _, body = rest.partition(b"\r\n\r\n")
        assert b"connection: close" in headers.lower()
        assert json.loads(body) == {
            "error": {
                "code": "request_timeout",
                "message": "the request body did not arrive within 1 s",
                "details": {"body_timeout_seconds": 1.0},
            }
        }

    @pytest.mark.parametrize(
        "sent",
        [b"", b"POST /v1/hooks/any HTTP/1.1\r\nHost: x\r\n"],
        ids=["connect-only", "half-headers"],
    )
    async def test_headers_not_finished_in_time_close_the_connection(
        self, api_port: int, sent: bytes
    ) -> None:
        with socket.create_connection(("127.0.0.1", api_port)) as sock:
            sock.sendall(sent)
            received, took = read_until_closed(sock, wait_s=HEADER_TIMEOUT_S + 5)

        assert received == b""
        assert took < HEADER_TIMEOUT_S + 3


class TestAbortedUpload:
    async def test_a_client_gone_mid_body_is_counted_and_logged_quietly(
        self, app: FastAPI, session: AsyncSession
    ) -> None:
        tenant = await make_tenant(session)
        connection = await make_connection(session, tenant)
        labels = {"connection_id": str(connection.id)}
        before = REGISTRY.get_sample_value("braze_bridge_webhooks_aborted_total", labels) or 0.0
        incoming: list[Message] = [
            {"type": "http.request", "body": b'{"type": "rew', "more_body": True},
            {"type": "http.disconnect"},
        ]
        sent: list[Message] = []

        async def receive() -> Message:
            return incoming.pop(0)

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": f"/v1/hooks/{connection.id}",
            "raw_path": f"/v1/hooks/{connection.id}".encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        with structlog.testing.capture_logs() as logs:
            await app(scope, receive, send)

        assert sent == []  # nobody to answer
        after = REGISTRY.get_sample_value("braze_bridge_webhooks_aborted_total", labels)
        assert after == before + 1
        assert len(logs) == 1
        assert logs[0]["event"] == "webhook.handled"
        assert logs[0]["outcome"] == "client_disconnected"
        assert logs[0]["connection_id"] == str(connection.id)
        assert logs[0]["status"] is None


def response_parts(received: bytes) -> tuple[bytes, bytes, object]:
    status_line, _, rest = received.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    return status_line, headers.lower(), json.loads(body)


@pytest.mark.slow
class TestFraming:
    def test_unusable_framing_is_refused_in_the_error_shape(self, api_port: int) -> None:
        head = "POST /v1/hooks/any HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        cases = {
            "Content-Length: 100000000000000000000\r\n": (
                b"HTTP/1.1 413 Request Entity Too Large",
                "payload_too_large",
                "Content-Length is too large",
            ),
            "Content-Length: 202\r\nContent-Length: 5\r\n": (
                b"HTTP/1.1 400 Bad Request",
                "bad_request",
                "invalid HTTP request: Duplicate Content-Length",
            ),
            "Content-Length: abc\r\n": (
                b"HTTP/1.1 400 Bad Request",
                "bad_request",
                "invalid HTTP request: Invalid character in Content-Length",
            ),
        }
        for framing, (status, code, message) in cases.items():
            with socket.create_connection(("127.0.0.1", api_port)) as sock:
                sock.sendall((head + framing + "\r\n").encode())
                received, _ = read_until_closed(sock, wait_s=5)
            status_line, headers, body = response_parts(received)
            assert status_line == status, framing
            assert b"content-type: application/json" in headers
            assert body == {"error": {"code": code, "message": message, "details": None}}


class TestTrailingSlash:
    async def test_a_trailing_slash_reaches_the_webhook_handler(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        tenant = await make_tenant(session)
        connection = await make_connection(session, tenant)
        content = raw(bodies.SHARED)

        response = await client.post(
            f"/v1/hooks/{connection.id}/",
            content=content,
            headers={
                "Content-Type": "application/json",
                "X-Extole-Signature": sign_hmac_sha256(connection.webhook_secret, content),
            },
        )

        assert response.status_code == 200
        assert response.json()["status"] == "accepted"
