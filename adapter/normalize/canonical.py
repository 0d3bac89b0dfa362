"""Version-specific payloads to canonical events, so consumers never need to know the OCPP version."""

from __future__ import annotations

from typing import Any

from adapter.normalize.events import EventDraft
from adapter.normalize.meter import energy_register_wh, samples_v2, samples_v16
from adapter.normalize.transactions import OpenTransaction, TransactionBook
from adapter.ocpp.versions import Version

_STATUS_V16 = {
    "Available": "available", "Preparing": "occupied", "Charging": "occupied", "SuspendedEV": "occupied",
    "SuspendedEVSE": "occupied", "Finishing": "occupied", "Reserved": "reserved",
    "Unavailable": "unavailable", "Faulted": "faulted",
}
_PERIODIC_TRIGGERS = {"MeterValuePeriodic", "MeterValueClock"}

Payload = dict[str, Any]


def _location_v16(connector_id: int | None) -> dict[str, int | None]:
    """1.6 connector N is 2.x EVSE N with its single connector 1; connector 0 is the whole charger."""
    return {"evse_id": connector_id, "connector_id": (1 if connector_id else None)}


def _meter_event(action: str, location: dict[str, int | None], transaction_id: str | None,
                 samples: list[dict[str, Any]], warnings: list[str]) -> EventDraft:
    return EventDraft("meter_values", action, {**location, "transaction_id": transaction_id, "samples": samples},
                      samples[0]["timestamp"] if samples else None, warnings)


def _boot(action: str, vendor: str, model: str, serial: str | None, firmware: str | None, reason: str | None,
          response: Payload) -> EventDraft:
    return EventDraft("boot", action, {"vendor": vendor, "model": model, "serial": serial,
                                       "firmware": firmware, "reason": reason, "status": response["status"]})


def _ended(action: str, tx: OpenTransaction | None, transaction_id: str, id_token: str | None,
           meter_stop: float | None, stopped_at: str, reason: str, trigger: str | None) -> EventDraft:
    start = tx.meter_start_wh if tx else None
    energy = meter_stop - start if meter_stop is not None and start is not None else None
    return EventDraft("transaction_ended", action, {
        "transaction_id": transaction_id,
        "evse_id": tx.evse_id if tx else None,
        "connector_id": tx.connector_id if tx else None,
        "id_token": id_token or (tx.id_token if tx else None),
        "meter_stop_wh": meter_stop, "energy_wh": energy, "stopped_at": stopped_at,
        "stop_reason": reason, "trigger_reason": trigger,
    }, stopped_at)


def v16(action: str, p: Payload, response: Payload, book: TransactionBook) -> list[EventDraft]:
    warnings: list[str] = []
    if action == "StatusNotification":
        code = p.get("errorCode")
        return [EventDraft("status", action, {
            **_location_v16(p["connectorId"]), "status": _STATUS_V16[p["status"]], "original_status": p["status"],
            "error_code": None if code == "NoError" else code, "info": p.get("info"),
            "vendor_error_code": p.get("vendorErrorCode"),
        }, p.get("timestamp"))]
    if action == "MeterValues":
        samples = samples_v16(p["meterValue"], warnings)
        tx_id = p.get("transactionId")
        return [_meter_event(action, _location_v16(p["connectorId"]), None if tx_id is None else str(tx_id),
                             samples, warnings)]
    if action == "StartTransaction":
        tx_id = str(response["transactionId"])
        location = _location_v16(p["connectorId"])
        book.open(OpenTransaction(tx_id, location["evse_id"], location["connector_id"], p["idTag"],
                                  float(p["meterStart"])))
        return [EventDraft("transaction_started", action, {
            "transaction_id": tx_id, **location, "id_token": p["idTag"], "meter_start_wh": float(p["meterStart"]),
            "started_at": p["timestamp"], "trigger_reason": None, "remote_start_id": None,
            "reservation_id": p.get("reservationId"),
        }, p["timestamp"])]
    if action == "StopTransaction":
        tx_id = str(p["transactionId"])
        tx = book.close(tx_id)
        events = []
        if p.get("transactionData"):
            location = _location_v16(tx.evse_id if tx else None)
            events.append(_meter_event(action, location, tx_id, samples_v16(p["transactionData"], warnings),
                                       warnings))
        events.append(_ended(action, tx, tx_id, p.get("idTag"), float(p["meterStop"]), p["timestamp"],
                             p.get("reason", "Local"), None))
        return events
    if action == "BootNotification":
        return [_boot(action, p["chargePointVendor"], p["chargePointModel"],
                      p.get("chargePointSerialNumber") or p.get("chargeBoxSerialNumber"),
                      p.get("firmwareVersion"), None, response)]
    if action == "Authorize":
        return [EventDraft("authorize", action, {"id_token": p["idTag"], "token_type": None,
                                                 "status": response["idTagInfo"]["status"]})]
    return [_message(action, p, response)]


def _message(action: str, p: Payload, response: Payload | None) -> EventDraft:
    return EventDraft("charger_message", action, {"action": action, "request": p, "response": response},
                      p.get("timestamp") if isinstance(p.get("timestamp"), str) else None)


def _transaction_event(p: Payload, book: TransactionBook) -> list[EventDraft]:
    action = "TransactionEvent"
    info = p["transactionInfo"]
    tx_id = info["transactionId"]
    evse = p.get("evse") or {}
    token = (p.get("idToken") or {}).get("idToken")
    warnings: list[str] = []
    samples = samples_v2(p.get("meterValue", []), warnings)
    known = book.get(tx_id)
    location = {"evse_id": evse.get("id", known.evse_id if known else None),
                "connector_id": evse.get("connectorId", known.connector_id if known else None)}
    events = []
    kind = p["eventType"]
    state = info.get("chargingState")
    if kind == "Started":
        start = energy_register_wh(samples)
        book.open(OpenTransaction(tx_id, location["evse_id"], location["connector_id"], token, start, state))
        events.append(EventDraft("transaction_started", action, {
            "transaction_id": tx_id, **location, "id_token": token, "meter_start_wh": start,
            "started_at": p["timestamp"], "trigger_reason": p["triggerReason"],
            "remote_start_id": info.get("remoteStartId"), "reservation_id": p.get("reservationId"),
        }, p["timestamp"]))
    elif kind == "Updated":
        if known is None:  # started before this session (or this adapter) saw it: remember it from here on
            known = OpenTransaction(tx_id, location["evse_id"], location["connector_id"], token, None)
            book.open(known)
        # Many chargers repeat chargingState in every periodic update; only a change is news, as in 1.6.
        changed = state is not None and state != known.charging_state
        if changed or token or p["triggerReason"] not in _PERIODIC_TRIGGERS:
            events.append(EventDraft("transaction_updated", action, {
                "transaction_id": tx_id, **location, "charging_state": state,
                "trigger_reason": p["triggerReason"], "id_token": token,
            }, p["timestamp"]))
        if state is not None:
            known.charging_state = state
    if samples:
        events.append(_meter_event(action, location, tx_id, samples, []))
    if kind == "Ended":
        tx = book.close(tx_id) or OpenTransaction(tx_id, location["evse_id"], location["connector_id"], token, None)
        events.append(_ended(action, tx, tx_id, token, energy_register_wh(samples), p["timestamp"],
                             info.get("stoppedReason", "Local"), p["triggerReason"]))
    for event in events:  # a dropped sample is news on whichever event the message still makes
        event.warnings = warnings
    return events


def v2(action: str, p: Payload, response: Payload | None, book: TransactionBook) -> list[EventDraft]:
    if action == "StatusNotification":
        book.note_connector(p["evseId"], p["connectorId"])
        return [EventDraft("status", action, {
            "evse_id": p["evseId"], "connector_id": p["connectorId"],
            "status": p["connectorStatus"].lower(), "original_status": p["connectorStatus"],
            "error_code": None, "info": None, "vendor_error_code": None,
        }, p["timestamp"])]
    if action == "MeterValues":
        warnings: list[str] = []
        evse = p["evseId"]  # 0: the charger's main meter, on no connector
        location = {"evse_id": evse, "connector_id": book.connector_of(evse) if evse else None}
        return [_meter_event(action, location, None, samples_v2(p["meterValue"], warnings), warnings)]
    if action == "TransactionEvent":
        return _transaction_event(p, book)
    if action == "BootNotification" and response is not None:
        station = p["chargingStation"]
        return [_boot(action, station["vendorName"], station["model"], station.get("serialNumber"),
                      station.get("firmwareVersion"), p["reason"], response)]
    if action == "Authorize" and response is not None:
        token = p["idToken"]
        return [EventDraft("authorize", action, {"id_token": token["idToken"], "token_type": token["type"],
                                                 "status": response["idTokenInfo"]["status"]})]
    return [_message(action, p, response)]


def normalize(version: Version, action: str, payload: Payload, response: Payload | None,
              book: TransactionBook) -> list[EventDraft]:
    if version is Version.V16:
        return v16(action, payload, response or {}, book)
    return v2(action, payload, response, book)
