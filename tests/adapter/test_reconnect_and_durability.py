"""Reconnect and takeover, and no billing event lost when the broker restarts mid-transaction."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
import websockets

from tests.adapter.events import T0, T1, T2, boot_2x, boot_16, check_event
from tests.conftest import Broker, MqttProbe, url_of


async def test_reconnect_replaces_the_old_session(adapter: Any, probe: MqttProbe, connect: Any) -> None:
    await probe.subscribe("/devices/lifecycle/+")
    first = await connect("cpR")
    await first.call("BootNotification", boot_16())
    # Announced once its own MQTT client is connected, which the boot's answer does not wait for: a session
    # replaced before that never says "connected" (the suite failed twice on the race, under load).
    assert (await probe.next_on("/devices/lifecycle/cpR"))["data"]["event"] == "connected"
    second = await connect("cpR")
    await first.ws.wait_closed()
    assert (first.ws.close_code, first.ws.close_reason) == (1000, "replaced by a newer connection")
    assert (await second.call("BootNotification", boot_16()))[2]["status"] == "Accepted"
    assert adapter.ctx.sessions["cpR"].ws is not None and len(adapter.ctx.sessions) == 1
    states = [(await probe.next_on("/devices/lifecycle/cpR"))["data"]["event"] for _ in range(2)]
    assert states == ["disconnected", "connected"]


async def test_a_reconnect_without_reboot_keeps_the_accepted_boot(adapter: Any, connect: Any) -> None:
    """OCPP 2.x chargers boot only after a reboot: a dropped link must not leave them refused (SecurityError)."""
    first = await connect("cpK", "ocpp2.0.1")
    assert (await first.call("BootNotification", boot_2x()))[2]["status"] == "Accepted"
    second = await connect("cpK", "ocpp2.0.1")  # takes over while the first session is open
    assert (await second.call("Heartbeat", {}))[0] == 3
    session = adapter.ctx.sessions["cpK"]
    await second.ws.close()
    await session.finished.wait()
    third = await connect("cpK", "ocpp2.0.1")  # no session left: what the store remembers
    assert (await third.call("Heartbeat", {}))[0] == 3
    assert (await adapter.ctx.store.get_charger("cpK")).boot_status == "Accepted"


async def test_another_adapter_process_knows_the_accepted_boot(adapter_factory: Any, tmp_path: Any) -> None:
    """As after a restart or a rolling deploy: the instance the charger reconnects to never saw its boot."""
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    first = await adapter_factory(store_url=store_url)
    ws = await websockets.connect(url_of(first, "cpB"), subprotocols=["ocpp2.0.1"])  # type: ignore[list-item]
    await ws.send(orjson.dumps([2, "b1", "BootNotification", {
        "reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V", "serialNumber": "SN-boot"}}]))
    assert orjson.loads(await ws.recv())[2]["status"] == "Accepted"
    await ws.close()
    second = await adapter_factory(store_url=store_url, adapter_id="second")
    ws = await websockets.connect(url_of(second, "cpB"), subprotocols=["ocpp2.0.1"])  # type: ignore[list-item]
    await ws.send('[2, "h1", "Heartbeat", {}]')
    assert orjson.loads(await ws.recv())[:2] == [3, "h1"]
    record = await second.ctx.store.get_charger("cpB")
    assert (record.reported_serial, record.serial) == ("SN-boot", None), "a boot never sets the trusted serial"
    await ws.close()


async def test_a_transaction_ended_through_another_adapter_keeps_what_its_start_said(
        adapter_factory: Any, probe: MqttProbe, tmp_path: Any) -> None:
    """A StopTransaction queued offline, or sent after a reconnect to another instance, names only the id."""
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    first = await adapter_factory(store_url=store_url)
    second = await adapter_factory(store_url=store_url, adapter_id="second")
    await probe.subscribe("ocpp/cpE/transactions")
    ws = await websockets.connect(url_of(first, "cpE"), subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    await ws.send(orjson.dumps([2, "s1", "StartTransaction", {"connectorId": 2, "idTag": "TAG7", "meterStart": 1000,
                                                              "timestamp": T0}]))
    tx_id = orjson.loads(await ws.recv())[2]["transactionId"]
    assert await first.ctx.store.get_transaction(f"cpE/{tx_id}") is not None
    await ws.close()
    ws = await websockets.connect(url_of(second, "cpE"), subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    await ws.send(orjson.dumps([2, "e1", "StopTransaction", {"transactionId": tx_id, "meterStop": 4000,
                                                             "timestamp": T2}]))
    assert orjson.loads(await ws.recv())[:2] == [3, "e1"]
    await ws.close()
    await probe.next_on("ocpp/cpE/transactions")
    ended = check_event(await probe.next_on("ocpp/cpE/transactions"))["data"]
    assert (ended["evse_id"], ended["connector_id"], ended["id_token"]) == (2, 1, "TAG7")
    assert (ended["meter_stop_wh"], ended["energy_wh"]) == (4000, 3000)


async def test_a_start_transaction_sent_again_gets_the_id_it_was_given(adapter: Any, probe: MqttProbe,
                                                                      connect: Any) -> None:
    """1.6 chargers retry transaction messages whose answer they missed (the link dropped just after the
    adapter answered): the retry must not open a second transaction that never ends."""
    await probe.subscribe("ocpp/cpRetry/transactions")
    start = {"connectorId": 1, "idTag": "TAG1", "meterStart": 500, "timestamp": T0}
    first = await connect("cpRetry")
    await first.call("BootNotification", boot_16())
    tx_id = (await first.call("StartTransaction", start))[2]["transactionId"]
    await first.close()
    again = await connect("cpRetry")
    assert (await again.call("StartTransaction", start))[2]["transactionId"] == tx_id
    later = (await again.call("StartTransaction", {**start, "timestamp": T1}))[2]["transactionId"]
    assert later != tx_id, "a new start (another time) is a new transaction"
    ids = [check_event(await probe.next_on("ocpp/cpRetry/transactions"))["data"]["transaction_id"] for _ in range(3)]
    assert ids == [str(tx_id), str(tx_id), str(later)]


async def test_takeover_by_another_adapter_instance(adapter_factory: Any, probe: MqttProbe) -> None:
    a = await adapter_factory(adapter_id="adapter-a")
    b = await adapter_factory(adapter_id="adapter-b", local_shadow="off")
    old = await websockets.connect(url_of(a, "cpT"), subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    await a.ctx.sessions["cpT"].link.client.wait_connected(10)
    new = await websockets.connect(url_of(b, "cpT"), subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    with pytest.raises(websockets.ConnectionClosed):
        await old.recv()
    assert old.close_reason == "taken over by adapter-b"
    assert "cpT" in b.ctx.sessions
    await new.close()


async def test_broker_restart_mid_transaction_loses_no_event(adapter_factory: Any, probe: MqttProbe,
                                                              mosquitto: Broker, connect: Any) -> None:
    adapter = await adapter_factory(puback_timeout=0.5)
    await probe.subscribe("ocpp/#")
    cp = await connect("cpD")
    await cp.call("BootNotification", boot_16())
    start = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": T0})
    tx = start[2]["transactionId"]
    await probe.next_on("ocpp/cpD/transactions")

    mosquitto.stop()
    meter = await cp.call("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
        {"timestamp": T1, "sampledValue": [{"value": "500"}]}]})
    stop = await cp.call("StopTransaction", {"transactionId": tx, "meterStop": 900, "timestamp": T2})
    assert meter[0] == 3 and stop[0] == 3, "answered only after the events were written to the outbox"
    assert len(await adapter.ctx.store.outbox_pending(10)) == 2

    mosquitto.restart()
    await probe.client.wait_connected(15)
    ended = check_event(await probe.next_on("ocpp/cpD/transactions", timeout=30))
    meter_event = check_event(await probe.next_on("ocpp/cpD/meter_values", timeout=30))
    assert ended["type"] == "transaction_ended" and ended["data"]["meter_stop_wh"] == 900
    assert meter_event["data"]["samples"][0]["value"] == 500
    await adapter.ctx.bus.control.wait_connected(15)
    await adapter.ctx.bus.replay_outbox()
    assert await adapter.ctx.store.outbox_pending(10) == [], "replayed items leave the outbox"

    await adapter.ctx.sessions["cpD"].link.client.wait_connected(15)
    await probe.subscribe("res/v1/#")
    await probe.publish("req/v1/cpD/DEFAULT/after/ClearCache", {})
    frame = await cp.next_call()
    await cp.answer(frame, {"status": "Accepted"})
    assert (await probe.next_on("res/v1/cpD/DEFAULT/after/ClearCache"))["status"] == "ok", \
        "the charger's request subscription was restored after the broker came back"


async def test_without_outbox_billing_is_not_acknowledged_while_broker_is_down(
        adapter_factory: Any, mosquitto: Broker, connect: Any) -> None:
    await adapter_factory(puback_timeout=0.3, billing_outbox=False)
    cp = await connect("cpN")
    await cp.call("BootNotification", boot_16())
    mosquitto.stop()
    reply = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": T0})
    assert reply[:3] == [4, reply[1], "InternalError"], "the charger keeps the message and retries"
    mosquitto.restart()


@pytest.mark.parametrize("mode", ["per-charger", "shared"])
async def test_shutdown_hands_every_last_lifecycle_event_to_the_broker(adapter_factory: Any, probe: MqttProbe,
                                                                       connect: Any, mode: str,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """No grace period: the bus stops only once the final (retained) lifecycle events are PUBACKed, so a
    subscriber arriving after shutdown sees every charger disconnected."""
    adapter = await adapter_factory(mqtt_mode=mode)
    chargers = [f"cpS{i}" for i in range(12)]
    for cp in chargers:
        assert (await (await connect(cp)).call("BootNotification", boot_16()))[2]["status"] == "Accepted"
    await adapter.shutdown()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    await probe.subscribe("/devices/lifecycle/+")
    await probe.wait_for(lambda t, b: sum(x["data"]["event"] == "disconnected"
                                          for x in probe.on("/devices/lifecycle/+")) == len(chargers))
    last = {b["charger_id"]: b["data"] for b in probe.on("/devices/lifecycle/+")}
    assert set(last) == set(chargers)
    assert {(d["event"], d["reason"], d["close_code"]) for d in last.values()} == {
        ("disconnected", "adapter shutting down", 1001)}
