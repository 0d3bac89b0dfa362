"""OCPP 2.0.1 / 2.1 message shapes and request handling for a simulated charging station.

Each connector of the neutral model is an EVSE with one connector (evseId = connector id, connectorId 1).
The two versions differ little for what a charger sends; 2.1 only adds optional fields.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from simulator import dialect, profiles
from simulator.config import ACCEPTED, NOT_SUPPORTED, V2_COMPONENTS, V2_NAMES
from simulator.dialect import VENDOR, status
from simulator.model import (
    AVAILABLE,
    CHARGING,
    DEAUTHORIZED,
    EV_DISCONNECTED,
    FAULTED,
    FINISHING,
    HARD_RESET,
    LOCAL,
    ONGOING_TRANSACTION,
    PREPARING,
    REMOTE,
    SOFT_RESET,
    UNAVAILABLE,
    UNLOCK_COMMAND,
    Connector,
    Message,
    Payload,
    Sample,
    Station,
    Transaction,
    iso_now,
)

_CONNECTOR_STATUS = {AVAILABLE: "Available", PREPARING: "Occupied", CHARGING: "Occupied",
                     FINISHING: "Occupied", FAULTED: "Faulted", UNAVAILABLE: "Unavailable"}

# Neutral stop reason -> (triggerReason, stoppedReason) of TransactionEvent Ended.
_STOP = {
    LOCAL: ("StopAuthorized", "Local"),
    REMOTE: ("RemoteStop", "Remote"),
    EV_DISCONNECTED: ("EVDeparted", "EVDisconnected"),
    DEAUTHORIZED: ("Deauthorized", "DeAuthorized"),
    HARD_RESET: ("ResetCommand", "ImmediateReset"),
    SOFT_RESET: ("ResetCommand", "ImmediateReset"),
    UNLOCK_COMMAND: ("UnlockCommand", "Other"),
}


def meter_value(samples: list[Sample]) -> Payload:
    return {"timestamp": iso_now(), "sampledValue": [
        {"value": s.value, "context": s.context, "measurand": s.measurand, "unitOfMeasure": {"unit": s.unit}}
        for s in samples]}


def _id_token(id_tag: str) -> Payload:
    return {"idToken": id_tag, "type": "ISO14443"}


class V2:
    format_violation = "FormatViolation"
    trigger_messages = frozenset({"BootNotification", "Heartbeat", "StatusNotification", "MeterValues",
                                  "TransactionEvent"})

    def __init__(self, version: str) -> None:
        self.version = version
        self.subprotocol = f"ocpp{version}"

    def boot(self, station: Station, reason: str) -> Message:
        return "BootNotification", {"reason": reason, "chargingStation": {
            "vendorName": VENDOR, "model": f"Sim{self.version.replace('.', '')}-{len(station.connectors)}E",
            "serialNumber": station.spec.charger_id[-25:], "firmwareVersion": "1.0.0"}}

    def status(self, station: Station, connector: Connector) -> Message | None:
        """2.x reports connector states, which change less often than 1.6 statuses."""
        status = _CONNECTOR_STATUS[connector.status]
        if status == connector.reported:
            return None
        connector.reported = status
        return "StatusNotification", {"timestamp": iso_now(), "connectorStatus": status,
                                      "evseId": connector.id, "connectorId": 1}

    def authorize(self, id_tag: str) -> Message:
        return "Authorize", {"idToken": _id_token(id_tag)}

    def authorized(self, response: Payload) -> bool:
        return bool(response.get("idTokenInfo", {}).get("status") == "Accepted")

    def _event(self, event_type: str, trigger: str, connector: Connector, tx: Transaction,
               info: Payload, meter: Payload | None) -> Message:
        payload: Payload = {"eventType": event_type, "timestamp": iso_now(), "triggerReason": trigger,
                            "seqNo": tx.next_seq(), "transactionInfo": {"transactionId": tx.id, **info},
                            "evse": {"id": connector.id, "connectorId": 1}}
        if meter is not None:
            payload["meterValue"] = [meter]
        return "TransactionEvent", payload

    def tx_start(self, station: Station, connector: Connector, tx: Transaction) -> Message:
        info: Payload = {"chargingState": "Charging"}
        if tx.remote_start_id is not None:
            info["remoteStartId"] = tx.remote_start_id
        trigger = "RemoteStart" if tx.remote_start_id is not None else "Authorized"
        name, payload = self._event("Started", trigger, connector, tx, info,
                                    meter_value(station.samples(connector, "Transaction.Begin")))
        payload["idToken"] = _id_token(tx.id_tag)
        return name, payload

    def tx_started(self, tx: Transaction, response: Payload) -> bool:
        return "idTokenInfo" not in response or self.authorized(response)

    def meter(self, station: Station, connector: Connector, context: str) -> Message:
        values = meter_value(station.samples(connector, context))
        if connector.tx is None or context == "Trigger":
            return "MeterValues", {"evseId": connector.id, "meterValue": [values]}
        return self._event("Updated", "MeterValuePeriodic", connector, connector.tx,
                           {"chargingState": "Charging"}, values)

    def tx_stop(self, station: Station, connector: Connector, tx: Transaction, reason: str) -> Message:
        trigger, stopped = _STOP[reason]
        name, payload = self._event("Ended", trigger, connector, tx,
                                    {"chargingState": "EVConnected", "stoppedReason": stopped},
                                    meter_value(station.samples(connector, "Transaction.End")))
        payload["idToken"] = _id_token(tx.id_tag)
        return name, payload

    def triggered(self, station: Station, message: str, connector_id: int | None) -> list[Message]:
        if message == "TransactionEvent":
            return [self._event("Updated", "Trigger", c, c.tx, {"chargingState": "Charging"}, None)
                    for c in station.connectors if connector_id in (None, c.id) and c.tx is not None]
        return dialect.triggered(self, station, message, connector_id)

    def handle(self, station: Station, action: str, payload: Payload) -> Payload:
        return dialect.dispatch(_HANDLERS, station, action, payload)


def _profile(payload: Payload, evse_id: int) -> profiles.Profile:
    return profiles.parse(payload, int(payload["id"]), payload["chargingSchedule"][0], evse_id, time.time())


def _request_start(station: Station, payload: Payload) -> Payload:
    evse_id = payload.get("evseId")
    raw = payload.get("chargingProfile")
    profile = None if raw is None else _profile(raw, evse_id or 0)
    started = station.remote_start(evse_id, payload["idToken"]["idToken"], payload["remoteStartId"], profile)
    return status(started is not None)


def _request_stop(station: Station, payload: Payload) -> Payload:
    return status(station.remote_stop(payload["transactionId"]))


def _reset(station: Station, payload: Payload) -> Payload:
    if payload.get("evseId"):
        return {"status": "Rejected"}  # resetting a single EVSE is not simulated
    immediate = station.reset(hard=True, when_idle=payload["type"] == "OnIdle")
    return {"status": "Accepted" if immediate else "Scheduled"}


def _variable(item: Payload) -> tuple[Payload, str | None, str | None]:
    """(result skeleton, 1.6 key, error status) for one SetVariableData/GetVariableData item."""
    component, variable = item["component"], item["variable"]
    result: Payload = {"component": component, "variable": variable}
    if item.get("attributeType") not in (None, "Actual"):
        return result, None, "NotSupportedAttributeType"
    key = V2_NAMES.get((component["name"], variable["name"]))
    if key is None:
        return result, None, "UnknownVariable" if component["name"] in V2_COMPONENTS else "UnknownComponent"
    return result, key, None


def _set_variables(station: Station, payload: Payload) -> Payload:
    results = []
    for item in payload["setVariableData"]:
        result, key, error = _variable(item)
        if key is not None:
            status = station.config.set(key, item["attributeValue"])
            if status == ACCEPTED:
                station.configured(key)
            error = "UnknownVariable" if status == NOT_SUPPORTED else status
        result["attributeStatus"] = error
        results.append(result)
    return {"setVariableResult": results}


def _get_variables(station: Station, payload: Payload) -> Payload:
    results = []
    for item in payload["getVariableData"]:
        result, key, error = _variable(item)
        result["attributeStatus"] = error or "Accepted"
        if key is not None:
            result["attributeValue"] = station.config.get(key)
        results.append(result)
    return {"getVariableResult": results}


def _trigger(station: Station, payload: Payload) -> Payload:
    return dialect.trigger(station, V2.trigger_messages, payload["requestedMessage"],
                           payload.get("evse", {}).get("id"))


def _set_profile(station: Station, payload: Payload) -> Payload:
    evse_id = payload["evseId"]
    return dialect.set_profile(station, evse_id, lambda: _profile(payload["chargingProfile"], evse_id))


def _clear_profile(station: Station, payload: Payload) -> Payload:
    criteria = payload.get("chargingProfileCriteria", {})
    purpose = criteria.get("chargingProfilePurpose")
    neutral = None if purpose is None else profiles.PURPOSES.get(purpose, profiles.OTHER)
    removed = station.clear_profiles(payload.get("chargingProfileId"), criteria.get("evseId"), neutral,
                                     criteria.get("stackLevel"))
    return {"status": "Accepted" if removed else "Unknown"}


def _change_availability(station: Station, payload: Payload) -> Payload:
    evse_id = payload.get("evse", {}).get("id")
    return {"status": station.change_availability(evse_id or None,
                                                  payload["operationalStatus"] == "Operative")}


def _unlock(station: Station, payload: Payload) -> Payload:
    outcome = station.unlock(payload["evseId"], end_transaction=False)
    if outcome == ONGOING_TRANSACTION:
        return {"status": "OngoingAuthorizedTransaction"}
    return {"status": outcome}


_HANDLERS: dict[str, Callable[[Station, Payload], Payload]] = {
    "RequestStartTransaction": _request_start,
    "RequestStopTransaction": _request_stop,
    "Reset": _reset,
    "SetVariables": _set_variables,
    "GetVariables": _get_variables,
    "TriggerMessage": _trigger,
    "SetChargingProfile": _set_profile,
    "ClearChargingProfile": _clear_profile,
    "ChangeAvailability": _change_availability,
    "UnlockConnector": _unlock,
    "DataTransfer": dialect.data_transfer,
}
