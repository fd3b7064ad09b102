"""Hot-path shortcuts keep the wire and process behaviour: Braze requests, garbage collection."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator

import httpx
import pytest

from braze_bridge.braze.client import USER_AGENT, BrazeClient
from braze_bridge.delivery import worker


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


@pytest.mark.usefixtures("restored_gc")
def test_worker_process_freezes_its_start_up_heap_and_collects_young_objects_later() -> None:
    worker._settle_garbage_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == worker.YOUNG_GC_THRESHOLD
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1  # cycles are still collected


async def test_one_connection_pools_spread_requests_and_reuse_their_connections() -> None:
    peers: set[tuple[str, int]] = set()
    answer = (
        b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
    )

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.add(writer.get_extra_info("peername"))
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                await asyncio.sleep(0.01)  # requests overlap
                writer.write(answer)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = worker.OneConnectionPools(4)
    slots = asyncio.Semaphore(4)  # as the worker does: never more in flight than pools

    async def one(http: httpx.AsyncClient, n: int) -> int:
        async with slots:
            response = await http.post(f"http://127.0.0.1:{port}/users/track", content=b"x" * n)
            return response.status_code

    try:
        async with httpx.AsyncClient(transport=transport) as http:
            statuses = await asyncio.gather(*(one(http, n) for n in range(1, 41)))
            assert transport.in_flight == [0, 0, 0, 0]
            with pytest.raises(httpx.ConnectError):  # nothing listens there: released anyway
                await http.get("http://127.0.0.1:1/")
            assert transport.in_flight == [0, 0, 0, 0]
    finally:
        server.close()
        await server.wait_closed()
    assert statuses == [201] * 40
    assert len(peers) == 4  # four keep-alive connections carried all 40 requests


def test_proxy_settings_keep_httpx_default_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    client = worker.create_http_client()
    assert not isinstance(client._transport, worker.OneConnectionPools)
    monkeypatch.delenv("HTTPS_PROXY")
    for name in ("HTTP_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(worker.create_http_client()._transport, worker.OneConnectionPools)
