"""Races around a session's start and end: takeovers, shutdown, and requests arriving in between."""

from __future__ import annotations

import asyncio
import collections
import gc
from typing import Any

import pytest
import websockets

from tests.adapter.events import boot_16
from tests.conftest import MqttProbe, OcppClient, url_of

MODES = ["per-charger", "shared"]


async def _stalled(adapter: Any, charger_id: str) -> Any:
    """A charger whose socket stops being read: closing its session takes the adapter's close timeout (5 s)."""
    ws = await websockets.connect(url_of(adapter, charger_id), subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    ws.transport.pause_reading()
    return ws


async def _opened(adapter: Any, charger_id: str) -> Any:
    return await websockets.connect(url_of(adapter, charger_id), subprotocols=["ocpp1.6"])  # type: ignore[list-item]


async def test_only_the_newest_of_two_reconnects_gets_a_session(adapter: Any) -> None:
    """Both wait for the same old session to end; before, both then got one (two MQTT clients with one id)."""
    await _stalled(adapter, "cpN")
    old = adapter.ctx.sessions["cpN"]
    second = await _opened(adapter, "cpN")
    third = await _opened(adapter, "cpN")
    await old.finished.wait()
    with pytest.raises(websockets.ConnectionClosed):
        await second.recv()
    assert (second.close_code, second.close_reason) == (1000, "replaced by a newer connection")
    await third.send('[2, "h", "Heartbeat", {}]')
    assert (await third.recv()).startswith('[3,"h"')
    assert list(adapter.ctx.sessions) == ["cpN"] and adapter.ctx.sessions["cpN"] is not old
    await third.close()


async def test_shutdown_during_a_takeover_closes_the_waiting_connection(adapter_factory: Any) -> None:
    adapter = await adapter_factory()
    await _stalled(adapter, "cpW")
    old = adapter.ctx.sessions["cpW"]
    waiting = await _opened(adapter, "cpW")  # its session waits for the stalled one to end
    async with asyncio.timeout(20):  # before, shutdown never ended: the late session was never closed
        await adapter.shutdown()
    assert old.finished.is_set() and adapter.ctx.sessions == {}
    with pytest.raises(websockets.ConnectionClosed):
        await waiting.recv()
    assert waiting.close_code == 1001


@pytest.mark.parametrize("mode", MODES)
async def test_requests_around_a_disconnect_get_exactly_one_response(adapter_factory: Any, probe: MqttProbe,
                                                                      mode: str) -> None:
    """Sent every few ms while the charger leaves: answered by the session, or not_connected, never both or
    neither (before, one arriving while the session closed went into a queue nobody served)."""
    adapter = await adapter_factory(mqtt_mode=mode)
    await probe.subscribe("res/v1/#")
    sent: list[str] = []
    for round_no in range(3):
        cp = f"cpF{round_no}"
        ws = await _opened(adapter, cp)
        charger = OcppClient(ws)
        await charger.call("BootNotification", boot_16())
        await adapter.ctx.sessions[cp].link.client.wait_connected(10)

        async def answer(client: OcppClient = charger) -> None:
            while True:
                frame = await client.next_call(60)
                await client.answer(frame, {"configurationKey": []})

        answering = asyncio.create_task(answer())
        for i in range(120):
            if i == 60:
                answering.cancel()
                closing = asyncio.create_task(charger.close())
            topic = f"req/v1/{cp}/DEFAULT/f{i}/GetConfiguration"
            sent.append(topic.replace("req/", "res/", 1))
            await probe.publish(topic, {})
            await asyncio.sleep(0.002)  # the flood's pace; nothing to await: it is the load
        await closing
    for topic in sent:
        await probe.wait_for(lambda t, b, want=topic: t == want, timeout=15)
    await adapter.drain()
    counts = collections.Counter(t for t, _ in probe.messages if t.startswith("res/v1/"))
    assert {t: n for t, n in counts.items() if n != 1} == {}
    statuses = collections.Counter(b["status"] for t, b in probe.messages if t.startswith("res/v1/"))
    assert set(statuses) == {"ok", "not_connected"}


@pytest.mark.parametrize("mode", MODES)
async def test_a_request_sent_on_the_connected_event_is_answered(adapter_factory: Any, probe: MqttProbe,
                                                                 mode: str) -> None:
    """The lifecycle "connected" goes out only once requests reach the session (per-charger: after SUBACK)."""
    adapter = await adapter_factory(mqtt_mode=mode)
    await probe.subscribe("/devices/lifecycle/+", "res/v1/#")
    for n in range(5):
        cp = f"cpA{n}"
        charger = OcppClient(await _opened(adapter, cp))
        await charger.call("BootNotification", boot_16())
        await probe.wait_for(lambda t, b, c=cp: t == f"/devices/lifecycle/{c}" and b["data"]["event"] == "connected")
        await probe.publish(f"req/v1/{cp}/DEFAULT/a{n}/ClearCache", {})
        frame = await charger.next_call()
        await charger.answer(frame, {"status": "Accepted"})
        assert (await probe.next_on(f"res/v1/{cp}/DEFAULT/a{n}/ClearCache"))["status"] == "ok"
        await charger.close()


async def test_a_full_request_queue_is_reported_for_desired_configuration(adapter_factory: Any, probe: MqttProbe,
                                                                           connect: Any) -> None:
    """Before, QueueFull escaped the apply task: no configuration_status at all, and the delta counted as seen."""
    adapter = await adapter_factory(request_queue_limit=1)
    cp = await connect("cpQF")
    await cp.call("BootNotification", boot_16())
    await adapter.ctx.sessions["cpQF"].link.client.wait_connected(10)
    await probe.subscribe("$aws/things/cpQF/shadow/update/accepted")
    await probe.publish("req/v1/cpQF/DEFAULT/q1/ClearCache", {})
    await cp.next_call()  # outstanding, never answered here
    await probe.publish("req/v1/cpQF/DEFAULT/q2/ClearCache", {})  # fills the queue
    await probe.wait_for(lambda t, b: t.endswith("/update/accepted"))  # any shadow traffic: the queue is full by now
    await probe.publish("$aws/things/cpQF/shadow/update",
                        {"state": {"desired": {"configuration": {"HeartbeatInterval": 60}}}})
    _, report = await probe.wait_for(lambda t, b: "configuration_status" in b["state"].get("reported", {}))
    assert report["state"]["reported"]["configuration_status"] == {"HeartbeatInterval": "timeout"}


async def test_handshakes_that_never_reach_a_session_leave_nothing_behind(adapter: Any) -> None:
    for _ in range(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", adapter.port)
        writer.write(b"GET /ocpp/cpLeak HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")  # no Sec-WebSocket-Key: refused after process_request
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 400")
        writer.close()
        await writer.wait_closed()
    await adapter.drain()
    gc.collect()
    assert len(adapter.handshake.admitted) <= 1, "the last may still be torn down; before, all 20 stayed"


async def test_a_frame_the_adapter_fails_on_does_not_end_the_session(
        adapter: Any, connect: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected failure while taking in one frame is logged once; the charger stays connected and its
    next message is answered (it used to end the session, and every charger sending that frame reconnected)."""
    cp = await connect("cpBug", "ocpp1.6")
    await cp.call("BootNotification", boot_16())
    session = adapter.ctx.sessions["cpBug"]
    real_receive = session.conn.receive

    def fails_once(raw: Any) -> Any:
        monkeypatch.setattr(session.conn, "receive", real_receive)
        raise RuntimeError("core bug")
    monkeypatch.setattr(session.conn, "receive", fails_once)
    await cp.ws.send('[2, "hb-lost", "Heartbeat", {}]')
    answer = await cp.call("Heartbeat", {})
    assert answer[0] == 3 and "currentTime" in answer[2]
    assert adapter.ctx.sessions["cpBug"] is session
    assert [r.getMessage() for r in caplog.records if r.getMessage() == "charger frame not processed"] == [
        "charger frame not processed"]
