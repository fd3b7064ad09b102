"""One client address may hold only so many connections to the real server at once; beyond
that a connection is answered 429 in the error shape, closed, and counted. Other addresses
are unaffected, and a closed connection frees its slot."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.support.processes import running_api

CAP = 3
HEAVY = "127.0.0.2"  # loopback: every 127/8 address is this machine, each its own peer
OTHER = "127.0.0.3"


@pytest.fixture
def capped_port(database_url: str) -> Iterator[int]:
    """`braze-bridge api` with a per-client cap of 3."""
    with running_api(
        database_url,
        TEST_SECRET_KEY,
        BRAZE_BRIDGE_HTTP_MAX_CONNECTIONS_PER_CLIENT=str(CAP),
        # Held connections must stay open for the whole test.
        BRAZE_BRIDGE_HTTP_KEEP_ALIVE_SECONDS="120",
        BRAZE_BRIDGE_HTTP_HEADER_TIMEOUT_SECONDS="120",
    ) as port:
        yield port


def connect(port: int, source: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    sock.settimeout(10)
    return sock


def get(sock: socket.socket, path: str) -> tuple[bytes, bytes]:
    """One keep-alive request; its status line and body (the server answered it, so it has
    counted this connection)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n", 1)[0], body


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def refused_count(port: int, source: str) -> float:
    with connect(port, source) as sock:
        _, body = get(sock, "/metrics")
    for line in body.decode().splitlines():
        if line.startswith('braze_bridge_http_connections_refused_total{reason="per_client_cap"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.slow
def test_connections_beyond_the_per_client_cap_get_429_and_are_counted(capped_port: int) -> None:
    before = refused_count(capped_port, OTHER)
    held = [connect(capped_port, HEAVY) for _ in range(CAP)]
    try:
        for sock in held:
            assert get(sock, "/healthz")[0] == b"HTTP/1.1 200 OK"

        with connect(capped_port, HEAVY) as extra:
            received = read_until_closed(extra)
        status_line, _, rest = received.partition(b"\r\n")
        headers, _, body = rest.partition(b"\r\n\r\n")
        assert status_line == b"HTTP/1.1 429 Too Many Requests"
        assert b"connection: close" in headers.lower()
        assert json.loads(body) == {
            "error": {
                "code": "too_many_connections",
                "message": f"this client already holds {CAP} open connections; close one and retry",
                "details": {"max_connections_per_client": CAP},
            }
        }

        # Another address is not affected, and the refusal was counted.
        assert refused_count(capped_port, OTHER) == before + 1
        # The held connections still work.
        assert get(held[0], "/healthz")[0] == b"HTTP/1.1 200 OK"
    finally:
        for sock in held[1:]:
            sock.close()

    # Closing frees slots. The server learns of a close asynchronously, so ask a bounded
    # number of times; each try is a real connection, not a wait.
    for _ in range(200):
        with connect(capped_port, HEAVY) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if read_until_closed(sock).startswith(b"HTTP/1.1 200 OK"):
                break
    else:
        pytest.fail("a closed connection's slot was never given back")
    held[0].close()
