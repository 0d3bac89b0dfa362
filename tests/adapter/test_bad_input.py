"""Bad input over real sockets: refused at the handshake or answered with the exact CALLERROR."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from adapter.observability import names
from adapter.observability.metrics import METRICS
from tests.adapter.events import boot_2x, boot_16
from tests.conftest import MqttProbe, url_of


@pytest.mark.parametrize(("path", "status"), [
    ("/ocpp/bad%2Fid", 400), ("/ocpp/a%2Bb", 400), ("/ocpp/a%23b", 400), ("/ocpp/has%20space", 400),
    ("/ocpp/nul%00x", 400), ("/ocpp/" + "x" * 49, 400), ("/ocpp/tab%09x", 400), ("/ocpp/adapter-h-control", 400),
    ("/other/prefix/cp1", 404), ("/ocpp/", 404),
])
async def test_bad_ids_are_refused_at_the_handshake(adapter: Any, probe: MqttProbe, path: str, status: int) -> None:
    await probe.subscribe("/devices/lifecycle/+", "ocpp/#")
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(f"ws://127.0.0.1:{adapter.port}{path}", subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    assert info.value.response.status_code == status
    assert probe.messages == [], "a refused charger never reaches MQTT"


async def test_bare_id_path_and_percent_decoding(adapter: Any) -> None:
    ws = await websockets.connect(f"ws://127.0.0.1:{adapter.port}/CP%2D7", subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    await asyncio.sleep(0)
    assert "CP-7" in adapter.ctx.sessions
    await ws.close()


async def test_malformed_subprotocol_header_is_tolerated(adapter: Any) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", adapter.port)
    writer.write(b"GET /ocpp/cpH HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                 b"Sec-WebSocket-Protocol: , ocpp1.6,,ocpp2.0.1 ocpp1.6 ,\r\n\r\n")
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    writer.close()
    assert head.startswith("HTTP/1.1 101")
    assert "Sec-WebSocket-Protocol: ocpp2.0.1\r\n" in head


async def test_no_common_subprotocol_finishes_handshake_then_closes(adapter: Any) -> None:
    ws = await websockets.connect(url_of(adapter, "cpX"), subprotocols=["ocpp1.2"])  # type: ignore[list-item]
    assert ws.subprotocol is None
    with pytest.raises(websockets.ConnectionClosed):
        await ws.recv()
    assert ws.close_code == 1002


async def test_fallback_version_for_chargers_offering_nothing(adapter_factory: Any) -> None:
    adapter = await adapter_factory(fallback_version="1.6")
    ws = await websockets.connect(url_of(adapter, "cpF"))
    await ws.send(orjson.dumps([2, "b1", "BootNotification", boot_16()]).decode())
    reply = orjson.loads(await ws.recv())
    assert reply[0] == 3 and reply[2]["status"] == "Accepted"
    await ws.close()


@pytest.mark.parametrize(("subprotocol", "frame", "expected"), [
    ("ocpp1.6", "{{{", [4, "-1", "FormationViolation"]),
    ("ocpp2.0.1", "{{{", [4, "-1", "FormatViolation"]),
    ("ocpp2.0.1", '{"x": 1}', [4, "-1", "RpcFrameworkError"]),
    ("ocpp2.0.1", '[7, "u1", "Heartbeat", {}]', [4, "u1", "MessageTypeNotSupported"]),
    ("ocpp1.6", '[7, "u1", "Heartbeat", {}]', [4, "u1", "FormationViolation"]),
    ("ocpp2.0.1", '[2, "' + "i" * 37 + '", "Heartbeat", {}]', [4, "-1", "RpcFrameworkError"]),
    ("ocpp2.0.1", '[2, "s1", "Heartbeat"]', [4, "s1", "RpcFrameworkError"]),
    ("ocpp1.6", '[2, "v1", "StatusNotification", {"connectorId": 1}]', [4, "v1", "OccurenceConstraintViolation"]),
    ("ocpp2.0.1", '[2, "v2", "Heartbeat", {}]', [4, "v2", "SecurityError"]),
    ("ocpp2.0.1", '[2, "n1", "Reset", {"type": "Immediate"}]', [4, "n1", "NotSupported"]),
    ("ocpp1.6", '[2, "n2", "Fly", {}]', [4, "n2", "NotImplemented"]),
])
async def test_bad_frames_get_the_exact_callerror(adapter: Any, connect: Any, subprotocol: str, frame: str,
                                                  expected: list[Any]) -> None:
    cp = await connect("cpBad", subprotocol)
    reply = await cp.send_raw(frame, expected[1])
    assert reply[:3] == expected
    # the session survives: a good message still works
    assert (await cp.call("BootNotification", boot_16() if subprotocol == "ocpp1.6" else {
        "reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}))[0] == 3


async def test_strict_mode_rejects_what_lenient_mode_normalizes(adapter_factory: Any, probe: MqttProbe) -> None:
    await probe.subscribe("ocpp/#")
    message = [2, "w1", "StatusNotification", {"connectorId": "1", "errorCode": "NoError", "status": "available"}]
    lenient = await adapter_factory()
    strict = await adapter_factory(strict=True, adapter_id="strict")
    for instance, cp in ((lenient, "cpL"), (strict, "cpS")):
        ws = await websockets.connect(url_of(instance, cp), subprotocols=["ocpp1.6"])  # type: ignore[list-item]
        await ws.send(orjson.dumps(message).decode())
        reply = orjson.loads(await ws.recv())
        if cp == "cpL":
            assert reply == [3, "w1", {}]
        else:
            assert reply[:3] == [4, "w1", "TypeConstraintViolation"]
        await ws.close()
    event = await probe.next_on("ocpp/cpL/status")
    assert event["data"]["status"] == "available" and len(event["warnings"]) == 2
    assert probe.on("ocpp/cpS/#") == []


async def test_2_1_send_messages_are_never_answered_and_have_no_call_form(adapter: Any, probe: MqttProbe) -> None:
    """A SEND before boot is refused silently (a CALLERROR would answer an unanswerable message); the
    SEND-only NotifyPeriodicEventStream sent as a CALL gets NotSupported, not an InternalError."""
    await probe.subscribe("ocpp/#")
    stream = {"id": 1, "pending": 0, "basetime": "2024-01-01T00:00:00Z", "data": [{"t": 0, "v": "1"}]}
    ws = await websockets.connect(url_of(adapter, "cp21send"), subprotocols=["ocpp2.1"])  # type: ignore[list-item]
    await ws.send(orjson.dumps([6, "s0", "NotifyPeriodicEventStream", stream]).decode())
    await ws.send(orjson.dumps([2, "b1", "BootNotification", boot_2x()]).decode())
    assert orjson.loads(await ws.recv())[:2] == [3, "b1"], "nothing answered the SEND"
    await ws.send(orjson.dumps([2, "c1", "NotifyPeriodicEventStream", stream]).decode())
    reply = orjson.loads(await ws.recv())
    assert reply[:3] == [4, "c1", "NotSupported"]
    await ws.send(orjson.dumps([6, "s1", "NotifyPeriodicEventStream", stream]).decode())
    event = await probe.next_on("ocpp/cp21send/events/NotifyPeriodicEventStream")
    assert (event["data"]["request"]["id"], event["data"]["response"]) == (1, None)
    assert probe.on("ocpp/cp21send/events/NotifyPeriodicEventStream") == [], "only the SEND after boot counts"
    await ws.close()


async def test_oversized_message_closes_with_1009(adapter_factory: Any) -> None:
    adapter = await adapter_factory(max_message_size=1024)
    ws = await websockets.connect(url_of(adapter, "cpBig"), subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    await ws.send(orjson.dumps([2, "b", "DataTransfer", {"vendorId": "x", "data": "y" * 4096}]).decode())
    with pytest.raises(websockets.ConnectionClosed):
        await ws.recv()
    assert ws.close_code == 1009


async def test_message_rate_limit_closes_with_1008(adapter_factory: Any) -> None:
    adapter = await adapter_factory(rate_limit=1.0, rate_burst=3)
    ws = await websockets.connect(url_of(adapter, "cpFast"), subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    for i in range(10):
        await ws.send(orjson.dumps([2, f"h{i}", "Heartbeat", {}]).decode())
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await ws.recv()
    assert (ws.close_code, ws.close_reason) == (1008, "message rate exceeded")


async def test_unknown_response_ids_are_dropped(adapter: Any, connect: Any) -> None:
    cp = await connect("cpU")
    await cp.ws.send('[3, "never-asked", {}]')
    assert (await cp.call("BootNotification", boot_16()))[2]["status"] == "Accepted"


async def test_http_endpoints(adapter: Any) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", adapter.port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"text/plain; version=0.0.4" in head
    writer.close()
    for path, status in (("/healthz", b"200"), ("/readyz", b"200"), ("/nothing", b"426")):
        reader, writer = await asyncio.open_connection("127.0.0.1", adapter.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert (await reader.readline()).split()[1] == status
        writer.close()


async def test_idle_session_is_closed(adapter_factory: Any) -> None:
    adapter = await adapter_factory(idle_timeout=0.4)
    ws = await websockets.connect(url_of(adapter, "cpIdle"), subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    await ws.wait_closed()
    assert (ws.close_code, ws.close_reason) == (1000, "idle timeout")


async def test_a_handshake_the_adapter_cannot_finish_in_time_is_counted_and_logged(
        adapter_factory: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """websockets aborts such a connection silently; the adapter says so (an overloaded store, say)."""
    adapter = await adapter_factory(handshake_timeout=0.3)
    never = asyncio.Event()

    async def stuck_store(*args: Any, **kwargs: Any) -> None:
        await never.wait()

    monkeypatch.setattr(adapter.ctx.store, "call", stuck_store)
    before = METRICS.counter(names.ERRORS, Kind="handshake_timeout")
    with pytest.raises(websockets.InvalidMessage):  # the connection closes before any HTTP response
        await websockets.connect(url_of(adapter, "cpSlow"), subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                                 open_timeout=10)
    records = [r for r in caplog.records if r.name == "adapter.server.handshake"]  # logged before the abort
    assert [(r.levelname, r.getMessage(), getattr(r, "charger_id", None)) for r in records] == [
        ("WARNING", "handshake timed out while authenticating (adapter overloaded?)", "cpSlow")]
    assert METRICS.counter(names.ERRORS, Kind="handshake_timeout") == before + 1
    monkeypatch.undo()  # the store works again for the adapter's shutdown


async def test_an_answer_the_adapter_cannot_give_publishes_no_event(adapter_factory: Any, connect: Any,
                                                                     probe: MqttProbe) -> None:
    """A parent id too long for 1.6's parentIdTag makes the answer invalid: the charger gets InternalError
    and retries, so no transaction_started may have been published for an id it never received."""
    from adapter.store.base import IdTokenRecord

    adapter = await adapter_factory(auth_policy="local")
    await adapter.ctx.store.put_id_token(IdTokenRecord("T1", parent_id="G" * 30))
    await probe.subscribe("ocpp/cpI/#")
    cp = await connect("cpI")
    assert (await cp.call("BootNotification", boot_16()))[0] == 3
    reply = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 0,
                                               "timestamp": "2024-05-01T10:00:00Z"})
    assert reply[:3] == [4, reply[1], "InternalError"]
    await cp.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"})
    await probe.next_on("ocpp/cpI/status")
    assert probe.on("ocpp/cpI/transactions") == []


async def test_a_full_adapter_refuses_new_chargers_with_503_but_lets_a_known_one_reconnect(
        adapter_factory: Any, connect: Any) -> None:
    """Past its capacity (from the open-file limit) a process would admit chargers it cannot serve."""
    adapter = await adapter_factory(max_chargers=2)
    first = await connect("cpCap1")
    await first.call("BootNotification", boot_16())
    await connect("cpCap2")
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(url_of(adapter, "cpCap3"), subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    assert info.value.response.status_code == 503
    assert info.value.response.headers["Retry-After"] == "30"
    again = await connect("cpCap1")  # a reconnect replaces its own session
    assert (await again.call("Heartbeat", {}))[0] == 3
    session = adapter.ctx.sessions["cpCap2"]
    await session.close(1000, "test")
    await session.finished.wait()
    third = await connect("cpCap3")
    assert (await third.call("BootNotification", boot_16()))[2]["status"] == "Accepted"
