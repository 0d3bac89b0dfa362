"""OCPP 1.6 message shapes and request handling for a simulated charge point."""

from __future__ import annotations

import time
from collections.abc import Callable

from simulator import dialect, profiles
from simulator.config import ACCEPTED, KEYS
from simulator.dialect import VENDOR, status
from simulator.model import (
    UNKNOWN_CONNECTOR,
    Connector,
    Message,
    Payload,
    Sample,
    Station,
    Transaction,
    iso_now,
)


def sample_text(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.2f}"


def meter_value(samples: list[Sample]) -> Payload:
    return {"timestamp": iso_now(), "sampledValue": [
        {"value": sample_text(s.value), "context": s.context, "measurand": s.measurand, "unit": s.unit}
        for s in samples]}


class V16:
    version = "1.6"
    subprotocol = "ocpp1.6"
    format_violation = "FormationViolation"
    trigger_messages = frozenset({"BootNotification", "Heartbeat", "StatusNotification", "MeterValues"})

    def boot(self, station: Station, reason: str) -> Message:
        return "BootNotification", {
            "chargePointVendor": VENDOR,
            "chargePointModel": f"Sim16-{len(station.connectors)}C",
            "chargePointSerialNumber": station.spec.charger_id[-25:],
            "firmwareVersion": "1.0.0",
        }

    def status(self, station: Station, connector: Connector) -> Message | None:
        connector.reported = connector.status
        return "StatusNotification", {"connectorId": connector.id, "errorCode": connector.error_code,
                                      "status": connector.status, "timestamp": iso_now()}

    def authorize(self, id_tag: str) -> Message:
        return "Authorize", {"idTag": id_tag}

    def authorized(self, response: Payload) -> bool:
        return bool(response.get("idTagInfo", {}).get("status") == "Accepted")

    def tx_start(self, station: Station, connector: Connector, tx: Transaction) -> Message:
        return "StartTransaction", {"connectorId": connector.id, "idTag": tx.id_tag,
                                    "meterStart": tx.meter_start_wh, "timestamp": iso_now()}

    def tx_started(self, tx: Transaction, response: Payload) -> bool:
        tx.id = str(response["transactionId"])
        return self.authorized(response)

    def meter(self, station: Station, connector: Connector, context: str) -> Message:
        payload: Payload = {"connectorId": connector.id,
                            "meterValue": [meter_value(station.samples(connector, context))]}
        if connector.tx is not None:
            payload["transactionId"] = int(connector.tx.id)
        return "MeterValues", payload

    def tx_stop(self, station: Station, connector: Connector, tx: Transaction, reason: str) -> Message:
        return "StopTransaction", {
            "transactionId": int(tx.id), "idTag": tx.id_tag, "meterStop": int(connector.energy_wh),
            "timestamp": iso_now(), "reason": reason,
            "transactionData": [meter_value(station.samples(connector, "Transaction.End"))],
        }

    def triggered(self, station: Station, message: str, connector_id: int | None) -> list[Message]:
        return dialect.triggered(self, station, message, connector_id)

    def handle(self, station: Station, action: str, payload: Payload) -> Payload:
        return dialect.dispatch(_HANDLERS, station, action, payload)


def _profile(payload: Payload, connector: int) -> profiles.Profile:
    return profiles.parse(payload, int(payload["chargingProfileId"]), payload["chargingSchedule"], connector,
                          time.time())


def _remote_start(station: Station, payload: Payload) -> Payload:
    raw = payload.get("chargingProfile")
    connector_id = payload.get("connectorId")
    profile = None if raw is None else _profile(raw, connector_id or 0)
    return status(station.remote_start(connector_id, payload["idTag"], None, profile) is not None)


def _remote_stop(station: Station, payload: Payload) -> Payload:
    return status(station.remote_stop(str(payload["transactionId"])))


def _reset(station: Station, payload: Payload) -> Payload:
    return status(station.reset(hard=payload["type"] == "Hard", when_idle=False))


def _change_configuration(station: Station, payload: Payload) -> Payload:
    status = station.config.set(payload["key"], payload["value"])
    if status == ACCEPTED:
        station.configured(payload["key"])
    return {"status": status}


def _get_configuration(station: Station, payload: Payload) -> Payload:
    wanted = payload.get("key") or list(station.config.values)
    known = [k for k in wanted if station.config.get(k) is not None]
    result: Payload = {"configurationKey": [
        {"key": k, "readonly": KEYS[k].readonly, "value": station.config.get(k)} for k in known]}
    unknown = [k for k in wanted if k not in known]
    if unknown:
        result["unknownKey"] = unknown
    return result


def _trigger(station: Station, payload: Payload) -> Payload:
    return dialect.trigger(station, V16.trigger_messages, payload["requestedMessage"], payload.get("connectorId"))


def _set_profile(station: Station, payload: Payload) -> Payload:
    connector_id = payload["connectorId"]
    return dialect.set_profile(station, connector_id, lambda: _profile(payload["csChargingProfiles"], connector_id))


def _clear_profile(station: Station, payload: Payload) -> Payload:
    purpose = payload.get("chargingProfilePurpose")
    removed = station.clear_profiles(payload.get("id"), payload.get("connectorId"),
                                     None if purpose is None else profiles.PURPOSES[purpose],
                                     payload.get("stackLevel"))
    return {"status": "Accepted" if removed else "Unknown"}


def _change_availability(station: Station, payload: Payload) -> Payload:
    connector_id = payload["connectorId"]
    return {"status": station.change_availability(connector_id or None, payload["type"] == "Operative")}


def _unlock(station: Station, payload: Payload) -> Payload:
    # A 1.6 charge point ends a transaction on the connector, then unlocks.
    outcome = station.unlock(payload["connectorId"], end_transaction=True)
    return {"status": "NotSupported" if outcome == UNKNOWN_CONNECTOR else "Unlocked"}


_HANDLERS: dict[str, Callable[[Station, Payload], Payload]] = {
    "RemoteStartTransaction": _remote_start,
    "RemoteStopTransaction": _remote_stop,
    "Reset": _reset,
    "ChangeConfiguration": _change_configuration,
    "GetConfiguration": _get_configuration,
    "TriggerMessage": _trigger,
    "SetChargingProfile": _set_profile,
    "ClearChargingProfile": _clear_profile,
    "ChangeAvailability": _change_availability,
    "UnlockConnector": _unlock,
    "DataTransfer": dialect.data_transfer,
}
