"""Normalization: 1.6 and 2.0.1 messages describing the same charging session give the same events."""

from typing import Any

import pytest

from adapter.normalize.canonical import normalize
from adapter.normalize.transactions import TransactionBook
from adapter.ocpp.versions import Version

T0, T1, T2 = "2024-05-01T10:00:00Z", "2024-05-01T10:15:00Z", "2024-05-01T10:30:00Z"


def session_16() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": T0}, {}),
        ("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000, "timestamp": T0},
         {"transactionId": 7, "idTagInfo": {"status": "Accepted"}}),
        ("MeterValues", {"connectorId": 1, "transactionId": 7, "meterValue": [{"timestamp": T1, "sampledValue": [
            {"value": "2.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"}]}]}, {}),
        ("StopTransaction", {"transactionId": 7, "meterStop": 4000, "timestamp": T2, "reason": "EVDisconnected"},
         {}),
    ]


def session_201() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    def mv(ts: str, wh: float, context: str) -> list[dict[str, Any]]:
        return [{"timestamp": ts, "sampledValue": [{"value": wh, "context": context,
                                                   "measurand": "Energy.Active.Import.Register"}]}]
    token = {"idToken": "TAG1", "type": "ISO14443"}
    return [
        ("StatusNotification", {"timestamp": T0, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}, {}),
        ("TransactionEvent", {"eventType": "Started", "timestamp": T0, "triggerReason": "Authorized", "seqNo": 0,
                              "transactionInfo": {"transactionId": "7"}, "idToken": token,
                              "evse": {"id": 1, "connectorId": 1}}, {}),
        ("TransactionEvent", {"eventType": "Updated", "timestamp": T1, "triggerReason": "MeterValuePeriodic",
                              "seqNo": 1, "transactionInfo": {"transactionId": "7"},
                              "meterValue": mv(T1, 2500, "Sample.Periodic")}, {}),
        ("TransactionEvent", {"eventType": "Ended", "timestamp": T2, "triggerReason": "EVCommunicationLost",
                              "seqNo": 2, "transactionInfo": {"transactionId": "7", "stoppedReason": "EVDisconnected"},
                              "meterValue": mv(T2, 4000, "Transaction.End")}, {}),
    ]


def run(version: Version, messages: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> list[Any]:
    book = TransactionBook()
    return [d for action, payload, response in messages for d in normalize(version, action, payload, response, book)]


def test_same_session_same_events() -> None:
    old, new = run(Version.V16, session_16()), run(Version.V201, session_201())
    assert [d.type for d in old] == ["status", "transaction_started", "meter_values", "transaction_ended"]
    assert [d.type for d in new] == ["status", "transaction_started", "meter_values", "meter_values",
                                     "transaction_ended"]
    assert old[0].data["status"] == new[0].data["status"] == "occupied"
    assert old[0].data["original_status"] == "Charging"
    for key in ("transaction_id", "evse_id", "connector_id", "id_token", "started_at"):
        assert old[1].data[key] == new[1].data[key], key
    assert old[2].data["samples"][0]["value"] == new[2].data["samples"][0]["value"] == 2500.0
    assert old[2].data["samples"][0]["original_value"] == "2.5 kWh"
    assert old[2].data["transaction_id"] == new[2].data["transaction_id"] == "7"
    ended_old, ended_new = old[-1].data, new[-1].data
    for key in ("transaction_id", "evse_id", "connector_id", "id_token", "meter_stop_wh", "stopped_at", "stop_reason"):
        assert ended_old[key] == ended_new[key], key
    assert ended_old["energy_wh"] == 3000.0
    assert set(ended_old) == set(ended_new)
    assert all(d.billing for d in old[1:]) and not old[0].billing


def test_charging_state_change_is_a_transaction_update() -> None:
    book = TransactionBook()
    drafts = normalize(Version.V201, "TransactionEvent", {
        "eventType": "Updated", "timestamp": T1, "triggerReason": "ChargingStateChanged", "seqNo": 3,
        "transactionInfo": {"transactionId": "X", "chargingState": "SuspendedEV"}}, {}, book)
    assert [(d.type, d.data["charging_state"]) for d in drafts] == [("transaction_updated", "SuspendedEV")]
    assert drafts[0].topic_suffix == "transactions"


def _updated(seq: int, trigger: str, state: str | None) -> dict[str, Any]:
    info = {"transactionId": "X", **({"chargingState": state} if state else {})}
    return {"eventType": "Updated", "timestamp": T1, "triggerReason": trigger, "seqNo": seq, "transactionInfo": info,
            "meterValue": [{"timestamp": T1, "sampledValue": [{"value": 10.0 * seq}]}]}


@pytest.mark.parametrize("started_state", ["Charging", None])
def test_a_repeated_charging_state_is_not_an_update(started_state: str | None) -> None:
    """Chargers that repeat chargingState in every periodic update produce what a 1.6 charger's MeterValues do;
    a transaction first seen mid-way (adapter restarted) reports its state once."""
    book = TransactionBook()
    if started_state:
        normalize(Version.V201, "TransactionEvent", {
            "eventType": "Started", "timestamp": T0, "triggerReason": "Authorized", "seqNo": 0,
            "transactionInfo": {"transactionId": "X", "chargingState": started_state}}, {}, book)
    types = [[d.type for d in normalize(Version.V201, "TransactionEvent", payload, {}, book)] for payload in (
        _updated(1, "MeterValuePeriodic", "Charging"), _updated(2, "MeterValuePeriodic", "Charging"),
        _updated(3, "MeterValuePeriodic", None), _updated(4, "ChargingStateChanged", "SuspendedEV"),
        _updated(5, "MeterValuePeriodic", "SuspendedEV"), _updated(6, "MeterValuePeriodic", "Charging"))]
    first = ["meter_values"] if started_state else ["transaction_updated", "meter_values"]
    assert types == [first, ["meter_values"], ["meter_values"], ["transaction_updated", "meter_values"],
                     ["meter_values"], ["transaction_updated", "meter_values"]]


def test_other_actions_are_charger_messages_on_their_own_topic() -> None:
    drafts = normalize(Version.V16, "FirmwareStatusNotification", {"status": "Installed"}, {}, TransactionBook())
    assert drafts[0].type == "charger_message"
    assert drafts[0].topic_suffix == "events/FirmwareStatusNotification"
    assert drafts[0].data == {"action": "FirmwareStatusNotification", "request": {"status": "Installed"},
                              "response": {}}


def test_non_numeric_signed_samples_are_kept_out_with_a_warning() -> None:
    drafts = normalize(Version.V16, "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": T0, "sampledValue": [
        {"value": "AB12==", "format": "SignedData"}, {"value": "10"}]}]}, {}, TransactionBook())
    assert [s["value"] for s in drafts[0].data["samples"]] == [10.0]
    assert "not numeric" in drafts[0].warnings[0]


@pytest.mark.parametrize("version", [Version.V16, Version.V201])
def test_a_sample_without_a_unit_is_in_its_measurands_base_unit(version: Version) -> None:
    measurands = ["Energy.Active.Import.Register", "Current.Import", "Voltage", "Power.Active.Import",
                  "Energy.Reactive.Import.Register", "SoC", "Temperature", "Power.Factor"]
    samples = [{"value": "1" if version is Version.V16 else 1, "measurand": m} for m in measurands] + [
        {"value": "2" if version is Version.V16 else 2}]
    payload: dict[str, Any] = {"meterValue": [{"timestamp": T0, "sampledValue": samples}]}
    payload.update({"connectorId": 1} if version is Version.V16 else {"evseId": 1})
    drafts = normalize(version, "MeterValues", payload, {}, TransactionBook())
    units = [s["unit"] for s in drafts[0].data["samples"]]
    assert units == ["Wh", "A", "V", "W", "varh", "Percent", "Celsius", "", "Wh"]


def _v2_sample(value: float, *, phase: str | None = None, location: str | None = None,
               multiplier: int = 0, unit: str = "Wh") -> dict[str, Any]:
    sample: dict[str, Any] = {"value": value, "unitOfMeasure": {"unit": unit, "multiplier": multiplier}}
    if phase:
        sample["phase"] = phase
    if location:
        sample["location"] = location
    return sample


def _tx_event(kind: str, seq: int, samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {"eventType": kind, "timestamp": T0, "triggerReason": "Authorized", "seqNo": seq,
            "transactionInfo": {"transactionId": "tx-9"}, "evse": {"id": 1, "connectorId": 1},
            "meterValue": [{"timestamp": T0, "sampledValue": samples}]}


def test_transaction_energy_comes_from_the_total_register_not_a_phase() -> None:
    book = TransactionBook()
    normalize(Version.V201, "TransactionEvent", _tx_event("Started", 0, [
        _v2_sample(1000), _v2_sample(300, phase="L1"), _v2_sample(900, location="Inlet"),
        _v2_sample(350, phase="L3")]), {}, book)
    ended = normalize(Version.V201, "TransactionEvent", _tx_event("Ended", 1, [
        _v2_sample(5, unit="kWh"), _v2_sample(1.2, unit="kWh", phase="L1")]), {}, book)[-1]
    assert ended.type == "transaction_ended"
    assert (ended.data["meter_stop_wh"], ended.data["energy_wh"]) == (5000.0, 4000.0)


def test_energy_register_falls_back_to_a_located_total() -> None:
    started = normalize(Version.V201, "TransactionEvent", _tx_event("Started", 0, [
        _v2_sample(700, location="Inlet"), _v2_sample(20, phase="L1")]), {}, TransactionBook())[0]
    assert started.data["meter_start_wh"] == 700.0


@pytest.mark.parametrize("version", [Version.V16, Version.V201])
def test_non_finite_samples_are_kept_out_with_a_warning(version: Version) -> None:
    """JSON has no NaN or infinity (orjson would write null, breaking the event schema), and a huge
    multiplier must not raise inside the handler."""
    if version is Version.V16:
        payload = {"connectorId": 1, "meterValue": [{"timestamp": T0, "sampledValue": [
            {"value": "NaN"}, {"value": "Infinity"}, {"value": "1e306", "unit": "kWh"}, {"value": "10"}]}]}
    else:
        payload = {"evseId": 1, "meterValue": [{"timestamp": T0, "sampledValue": [
            _v2_sample(1, multiplier=400), _v2_sample(1e300, multiplier=10), _v2_sample(10)]}]}
    drafts = normalize(version, "MeterValues", payload, {}, TransactionBook())
    assert [s["value"] for s in drafts[0].data["samples"]] == [10.0]
    assert len(drafts[0].warnings) == (3 if version is Version.V16 else 2)
    assert all("not a finite number" in w for w in drafts[0].warnings)


def test_warnings_of_dropped_samples_survive_when_no_sample_is_left() -> None:
    drafts = normalize(Version.V201, "TransactionEvent", _tx_event("Started", 0, [_v2_sample(1, multiplier=400)]),
                       {}, TransactionBook())
    assert [d.type for d in drafts] == ["transaction_started"]
    assert drafts[0].data["meter_start_wh"] is None
    assert "not a finite number" in drafts[0].warnings[0]


def _meter_v2(evse_id: int) -> dict[str, Any]:
    return {"evseId": evse_id, "meterValue": [{"timestamp": T1, "sampledValue": [{"value": 1.0}]}]}


def test_2x_meter_values_name_the_connector_when_it_is_clear() -> None:
    """2.x MeterValues names only the EVSE: the connector is its open transaction's, else its only known one,
    as 1.6's connector N is EVSE N connector 1. With two connectors and no transaction it stays unknown."""
    book = TransactionBook()

    def connector(evse_id: int) -> int | None:
        return normalize(Version.V201, "MeterValues", _meter_v2(evse_id), {}, book)[0].data["connector_id"]  # type: ignore[no-any-return]
    assert connector(1) is None
    for evse_id, connector_id in ((1, 1), (2, 1), (2, 2)):
        normalize(Version.V201, "StatusNotification", {"timestamp": T0, "connectorStatus": "Available",
                                                       "evseId": evse_id, "connectorId": connector_id}, {}, book)
    assert (connector(1), connector(2), connector(0)) == (1, None, None)
    normalize(Version.V201, "TransactionEvent", {
        "eventType": "Started", "timestamp": T0, "triggerReason": "CablePluggedIn", "seqNo": 0,
        "transactionInfo": {"transactionId": "T2"}, "evse": {"id": 2, "connectorId": 2}}, {}, book)
    assert connector(2) == 2
    old = run(Version.V16, [("MeterValues", {"connectorId": 1, "meterValue": [
        {"timestamp": T1, "sampledValue": [{"value": "1"}]}]}, {})])
    assert old[0].data["connector_id"] == connector(1) == 1
