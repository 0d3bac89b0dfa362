"""--proxy-protocol over real sockets: the client address an NLB names reaches the throttle and the lifecycle
events; connections without a valid header never reach the HTTP handshake; health checks keep working."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from adapter.observability import names
from adapter.observability.metrics import METRICS
from adapter.server.proxied import ProxiedConnection
from tests.adapter.test_auth_over_the_wire import PASSWORD, add, basic
from tests.conftest import MqttProbe, url_of
from tests.core.proxy_headers import NLB_HEALTH_CHECK, v2_from

CLIENT = ("203.0.113.7", 45678)
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: adapter\r\n\r\n"


async def tcp(adapter: Any, *writes: bytes) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", adapter.port))
    for data in writes:
        await loop.sock_sendall(sock, data)
    return sock


async def proxied_ws(adapter: Any, charger_id: str, header: bytes, **kwargs: Any) -> ClientConnection:
    """A charger's WebSocket handshake on a connection that starts with ``header``, as the NLB forwards it."""
    return await websockets.connect(url_of(adapter, charger_id), sock=await tcp(adapter, header),
                                    subprotocols=["ocpp1.6"], **kwargs)  # type: ignore[list-item]


async def everything_received(sock: socket.socket) -> bytes:
    """What the adapter sent until it closed the connection (a reset after an abort counts as a close)."""
    loop, received = asyncio.get_running_loop(), b""
    try:
        while chunk := await loop.sock_recv(sock, 4096):
            received += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return received


async def test_the_charger_address_is_the_one_the_header_names(adapter_factory: Any, probe: MqttProbe) -> None:
    adapter = await adapter_factory(proxy_protocol=True)
    await probe.subscribe("/devices/lifecycle/+")
    ws = await proxied_ws(adapter, "cpProxied", v2_from(*CLIENT))
    lifecycle = await probe.next_on("/devices/lifecycle/cpProxied")
    assert (lifecycle["data"]["event"], lifecycle["data"]["remote_address"]) == ("connected", "203.0.113.7:45678")
    await ws.close()


@pytest.mark.parametrize("first_bytes", [b"", v2_from(*CLIENT)[:11] + b"X", v2_from(*CLIENT)[:12] + b"\x31"],
                         ids=["no-header", "bad-signature", "bad-version"])
async def test_a_connection_without_a_valid_header_is_closed_unanswered_and_logged_once(
        adapter_factory: Any, caplog: pytest.LogCaptureFixture, first_bytes: bytes) -> None:
    adapter = await adapter_factory(proxy_protocol=True)
    before = METRICS.counter(names.ERRORS, Kind="proxy_protocol")
    assert await everything_received(await tcp(adapter, first_bytes + HEALTHZ)) == b""
    records = [r for r in caplog.records if r.name == "adapter.server.proxied"]
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("WARNING", "connection without a valid PROXY protocol header closed")]
    assert getattr(records[0], "peer", "").startswith("127.0.0.1:")
    assert METRICS.counter(names.ERRORS, Kind="proxy_protocol") == before + 1


async def test_a_stalled_header_is_closed_by_the_handshake_timeout(
        adapter_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    adapter = await adapter_factory(proxy_protocol=True, handshake_timeout=0.3)
    async with asyncio.timeout(5):
        assert await everything_received(await tcp(adapter, v2_from(*CLIENT)[:20])) == b""
    (record,) = [r for r in caplog.records if r.name == "adapter.server.proxied"]
    assert (getattr(record, "reason", None), getattr(record, "received_bytes", None)) == (
        "incomplete PROXY protocol header", 20)


async def test_nlb_health_checks_get_healthz(adapter_factory: Any) -> None:
    """The NLB sends a LOCAL header on its health checks too (with the request in the same segment)."""
    adapter = await adapter_factory(proxy_protocol=True)
    response = await everything_received(await tcp(adapter, NLB_HEALTH_CHECK + HEALTHZ.replace(
        b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")))
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(b"\r\n\r\nok\n")


async def test_a_header_split_over_several_writes(adapter_factory: Any, probe: MqttProbe,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Each piece is written only once the adapter has read the one before: the kernel cannot join them."""
    arrived: list[bytes] = []
    more = asyncio.Event()
    data_received = ProxiedConnection.data_received

    def counted(connection: ProxiedConnection, data: bytes) -> None:
        arrived.append(data)
        more.set()
        data_received(connection, data)

    monkeypatch.setattr(ProxiedConnection, "data_received", counted)
    adapter = await adapter_factory(proxy_protocol=True)
    await probe.subscribe("/devices/lifecycle/+")
    header = v2_from(*CLIENT)
    pieces = [header[:5], header[5:14], header[14:20], header[20:]]
    sock = await tcp(adapter)
    for piece in pieces:
        more.clear()
        await asyncio.get_running_loop().sock_sendall(sock, piece)
        async with asyncio.timeout(5):
            await more.wait()
    assert arrived == pieces
    ws = await websockets.connect(url_of(adapter, "cpSplit"), sock=sock,
                                  subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    lifecycle = await probe.next_on("/devices/lifecycle/cpSplit")
    assert lifecycle["data"]["remote_address"] == "203.0.113.7:45678"
    await ws.close()


async def test_password_guesses_are_throttled_per_proxied_address(adapter_factory: Any) -> None:
    """Behind the NLB every socket comes from a few load balancer addresses: without the header's address, one
    guesser would lock every charger behind the same NLB node out of the id."""
    adapter = await adapter_factory(proxy_protocol=True, registration="known")
    await add(adapter, "CP-1", 1)
    guesser, charger = v2_from("198.51.100.66", 40000), v2_from("203.0.113.7", 45678)
    wrong = basic("CP-1", "wrong-password-123")

    async def status(header: bytes, headers: dict[str, str]) -> int:
        try:
            ws = await proxied_ws(adapter, "CP-1", header, additional_headers=headers)
        except InvalidStatus as refused:
            return refused.response.status_code
        await ws.close()
        return 101

    assert [await status(guesser, wrong) for _ in range(6)] == [401] * 5 + [429]
    assert await status(charger, wrong) == 401, "another address is not locked out"
    assert await status(guesser, wrong) == 429
    assert await status(charger, basic("CP-1", PASSWORD)) == 101
