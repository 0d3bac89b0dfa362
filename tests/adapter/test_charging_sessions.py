"""Whole charging sessions over real sockets, boot to stop, asserting the exact MQTT events."""

from __future__ import annotations

from typing import Any

from tests.adapter.events import T0, T1, T2, TOKEN_201, boot_2x, boot_16, check_event, meter_2x, tx_event
from tests.conftest import MqttProbe


async def events_of(probe: MqttProbe, cp: str, count: int) -> list[dict[str, Any]]:
    await probe.wait_for(lambda t, b: len(probe.on(f"ocpp/{cp}/#")) >= count)
    return [check_event(b) for b in probe.on(f"ocpp/{cp}/#")]


async def test_v16_session(adapter: Any, probe: MqttProbe, connect: Any) -> None:
    await probe.subscribe("ocpp/#", "/devices/lifecycle/+", "$aws/things/+/shadow/update/accepted")
    cp = await connect("cp16")
    lifecycle = check_event(await probe.next_on("/devices/lifecycle/cp16"))
    assert lifecycle["data"]["event"] == "connected" and lifecycle["adapter_id"] == "test-adapter"

    boot = await cp.call("BootNotification", boot_16())
    assert boot[2]["status"] == "Accepted" and boot[2]["interval"] == 300
    assert (await cp.call("Heartbeat", {}))[2]["currentTime"].endswith("Z")
    await cp.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"})
    assert (await cp.call("Authorize", {"idTag": "TAG1"}))[2] == {"idTagInfo": {"status": "Accepted"}}
    start = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000,
                                               "timestamp": T0})
    tx_id = start[2]["transactionId"]
    await cp.call("MeterValues", {"connectorId": 1, "transactionId": tx_id, "meterValue": [
        {"timestamp": T1, "sampledValue": [{"value": "2500", "measurand": "Energy.Active.Import.Register"}]}]})
    stop = await cp.call("StopTransaction", {"transactionId": tx_id, "meterStop": 4000, "timestamp": T2,
                                             "reason": "EVDisconnected", "idTag": "TAG1"})
    assert stop[2] == {"idTagInfo": {"status": "Accepted"}}

    events = await events_of(probe, "cp16", 7)
    assert [(e["type"], e["data"].get("action")) for e in events] == [
        ("boot", None), ("charger_message", "Heartbeat"), ("status", None), ("authorize", None),
        ("transaction_started", None), ("meter_values", None), ("transaction_ended", None)]
    topics = [t for t, _ in probe.messages if t.startswith("ocpp/cp16/")]
    assert topics == ["ocpp/cp16/events/BootNotification", "ocpp/cp16/events/Heartbeat", "ocpp/cp16/status",
                      "ocpp/cp16/events/Authorize", "ocpp/cp16/transactions", "ocpp/cp16/meter_values",
                      "ocpp/cp16/transactions"]
    assert events[0]["data"] == {"vendor": "Acme", "model": "AC22", "serial": "SN1", "firmware": "1.0",
                                 "reason": None, "status": "Accepted"}
    assert events[2]["data"]["status"] == "occupied" and events[2]["data"]["original_status"] == "Preparing"
    assert events[4]["data"]["transaction_id"] == str(tx_id) and events[4]["data"]["meter_start_wh"] == 1000
    assert events[5]["data"]["transaction_id"] == str(tx_id)
    ended = events[6]["data"]
    assert (ended["meter_stop_wh"], ended["energy_wh"], ended["stop_reason"]) == (4000, 3000, "EVDisconnected")
    assert all(e["ocpp_version"] == "1.6" and e["charger_id"] == "cp16" for e in events)

    shadow = await probe.wait_for(lambda t, b: "vendor" in b.get("state", {}).get("reported", {}))
    assert shadow[0] == "$aws/things/cp16/shadow/update/accepted"


async def run_2x_session(cp: Any) -> None:
    boot = await cp.call("BootNotification", boot_2x())
    assert boot[2]["status"] == "Accepted"
    await cp.call("StatusNotification", {"timestamp": T0, "connectorStatus": "Occupied", "evseId": 1,
                                         "connectorId": 1})
    auth = await cp.call("Authorize", {"idToken": TOKEN_201})
    assert auth[2] == {"idTokenInfo": {"status": "Accepted"}}
    started = await cp.call("TransactionEvent", tx_event("Started", 0, T0, "Authorized", idToken=TOKEN_201,
                                                         evse={"id": 1, "connectorId": 1},
                                                         meterValue=meter_2x(T0, 1000, "Transaction.Begin")))
    assert started[2] == {"idTokenInfo": {"status": "Accepted"}}
    await cp.call("TransactionEvent", tx_event("Updated", 1, T1, "ChargingStateChanged",
                                               info={"chargingState": "Charging"}))
    await cp.call("TransactionEvent", tx_event("Updated", 2, T1, "MeterValuePeriodic",
                                               meterValue=meter_2x(T1, 2500, "Sample.Periodic")))
    ended = await cp.call("TransactionEvent", tx_event("Ended", 3, T2, "EVCommunicationLost",
                                                       info={"stoppedReason": "EVDisconnected"},
                                                       meterValue=meter_2x(T2, 4000, "Transaction.End")))
    assert ended[2] == {}


async def test_v201_and_v21_sessions(adapter: Any, probe: MqttProbe, connect: Any) -> None:
    await probe.subscribe("ocpp/#")
    for name, subprotocol, version in (("cp201", "ocpp2.0.1", "2.0.1"), ("cp21", "ocpp2.1", "2.1")):
        cp = await connect(name, subprotocol)
        assert cp.ws.subprotocol == subprotocol
        await run_2x_session(cp)
        events = await events_of(probe, name, 9)
        assert [e["type"] for e in events] == [
            "boot", "status", "authorize", "transaction_started", "meter_values", "transaction_updated",
            "meter_values", "meter_values", "transaction_ended"]
        assert all(e["ocpp_version"] == version for e in events)
        started = next(e for e in events if e["type"] == "transaction_started")["data"]
        assert (started["transaction_id"], started["evse_id"], started["meter_start_wh"]) == ("TX-1", 1, 1000)
        ended = next(e for e in events if e["type"] == "transaction_ended")["data"]
        assert (ended["meter_stop_wh"], ended["energy_wh"], ended["stop_reason"]) == (4000, 3000, "EVDisconnected")


async def test_transactions_are_recorded_in_the_store(adapter: Any, connect: Any) -> None:
    cp = await connect("cpStore")
    await cp.call("BootNotification", boot_16())
    start = await cp.call("StartTransaction", {"connectorId": 2, "idTag": "TAG1", "meterStart": 100,
                                               "timestamp": T0})
    tx_id = start[2]["transactionId"]
    await cp.call("StopTransaction", {"transactionId": tx_id, "meterStop": 600, "timestamp": T2})
    key = f"cpStore/{tx_id}"
    await adapter.drain()
    record = await adapter.ctx.store.get_transaction(key)
    assert record is not None and record.state == "ended"
    assert (record.meter_start_wh, record.meter_stop_wh, record.energy_wh) == (100, 600, 500)
    assert (record.evse_id, record.id_token, record.stop_reason) == (2, "TAG1", "Local")
    assert record.started_at is not None and record.stopped_at is not None
