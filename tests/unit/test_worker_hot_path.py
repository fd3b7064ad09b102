"""Hot-path shortcuts keep the wire and process behaviour: Braze requests, the HTTP transport,
garbage collection in worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from braze_bridge.braze.client import USER_AGENT, BrazeClient
from braze_bridge.braze.transport import HTTP_CONNECTIONS, OneConnectionPools, create_http_client
from braze_bridge.runtime import YOUNG_GC_THRESHOLD, freeze_startup_heap


async def test_prebuilt_requests_match_what_httpx_request_would_send() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"message": "success"}, headers={"X-Request-Id": "r1"})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(answer), timeout=httpx.Timeout(30.0, connect=10.0)
    ) as http:
        client = BrazeClient(http, "https://rest.iad-01.braze.com/", "key-1")
        reply = await client.post_encoded("/users/track", b'{"events":[]}')
        await client.post("/users/track", {"attributes": []}, deadline_s=5.0)
        await client.list_events()
        expected = http.build_request(
            "POST",
            "https://rest.iad-01.braze.com/users/track",
            content=b'{"events":[]}',
            headers={
                "Authorization": "Bearer key-1",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
        )

    first, second, third = seen
    assert str(first.url) == str(expected.url)
    assert first.headers.multi_items() == expected.headers.multi_items()
    assert first.content == b'{"events":[]}'
    assert first.extensions["timeout"] == expected.extensions["timeout"]
    assert second.extensions["timeout"] == httpx.Timeout(5.0).as_dict()
    assert (third.method, "content-type" in third.headers) == ("GET", False)
    assert third.headers["authorization"] == "Bearer key-1"
    assert {r.headers["user-agent"] for r in seen} == {USER_AGENT}
    assert reply.status_code == 201
    assert reply.headers == {"x-request-id": "r1", "content-type": "application/json"}


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class _Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("restored_gc")
def test_worker_process_freezes_its_start_up_heap_and_still_collects_cycles() -> None:
    freeze_startup_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_GC_THRESHOLD
    cycle = _Cycle()
    alive = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert alive() is None


class Server:
    """A local HTTP/1.1 server answering 201 to every request; it notes each connection's peer
    and each request line."""

    def __init__(self) -> None:
        self.peers: set[tuple[str, int]] = set()
        self.request_lines: list[bytes] = []
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.add(writer.get_extra_info("peername"))
        answer = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
        answer += b"content-length: 2\r\n\r\n{}"
        try:
            await self._answer_each_request(reader, writer, answer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer_each_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes
    ) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.request_lines.append(head.split(b"\r\n", 1)[0])
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                await asyncio.sleep(0.01)  # requests overlap
                writer.write(answer)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    listening = await asyncio.start_server(state.serve, "127.0.0.1", 0)
    state.port = listening.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        listening.close()
        await listening.wait_closed()


@pytest.fixture
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def test_one_connection_pools_spread_requests_and_reuse_their_connections(
    server: Server,
) -> None:
    transport = OneConnectionPools(4)
    slots = asyncio.Semaphore(4)  # as the worker does: never more in flight than pools

    async def one(http: httpx.AsyncClient, n: int) -> int:
        async with slots:
            url = f"http://127.0.0.1:{server.port}/users/track"
            return (await http.post(url, content=b"x" * n)).status_code

    async with httpx.AsyncClient(transport=transport) as http:
        statuses = await asyncio.gather(*(one(http, n) for n in range(1, 41)))
        assert transport.in_flight == [0, 0, 0, 0]
        with pytest.raises(httpx.ConnectError):  # nothing listens there: released anyway
            await http.get("http://127.0.0.1:1/")
        assert transport.in_flight == [0, 0, 0, 0]
    assert statuses == [201] * 40
    assert len(server.peers) == 4  # four keep-alive connections carried all 40 requests


@pytest.mark.usefixtures("no_proxy_settings")
async def test_the_http_client_keeps_at_most_its_pool_of_connections(server: Server) -> None:
    async with create_http_client() as http:
        url = f"http://127.0.0.1:{server.port}/users/track"
        replies = await asyncio.gather(*(http.post(url, content=b"{}") for _ in range(40)))
    assert [reply.status_code for reply in replies] == [201] * 40
    assert 1 <= len(server.peers) <= HTTP_CONNECTIONS


@pytest.mark.usefixtures("no_proxy_settings")
async def test_the_http_client_goes_through_a_configured_proxy(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
    async with create_http_client() as http:
        reply = await http.post("http://rest.braze.invalid/users/track", content=b"{}")
    assert reply.status_code == 201
    # A proxy receives the absolute URL in the request line.
    assert server.request_lines == [b"POST http://rest.braze.invalid/users/track HTTP/1.1"]
