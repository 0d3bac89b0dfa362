"""Helpers the adapter integration tests share: charger message builders and event-schema checks."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema

from adapter.normalize.event_schemas import SCHEMA_DIR

T0, T1, T2 = "2024-05-01T10:00:00Z", "2024-05-01T10:15:00Z", "2024-05-01T10:30:00Z"
TOKEN_201 = {"idToken": "TAG1", "type": "ISO14443"}


@cache
def _validator(event_type: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMA_DIR / f"{event_type}.schema.json").read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def check_event(body: dict[str, Any]) -> dict[str, Any]:
    """Every published event validates against the JSON Schema of its type in docs/events/."""
    _validator(body["type"]).validate(body)
    return body


def boot_16() -> dict[str, Any]:
    return {"chargePointVendor": "Acme", "chargePointModel": "AC22", "chargePointSerialNumber": "SN1",
            "firmwareVersion": "1.0"}


def boot_2x() -> dict[str, Any]:
    return {"reason": "PowerUp", "chargingStation": {"model": "AC22", "vendorName": "Acme", "serialNumber": "SN1",
                                                     "firmwareVersion": "1.0"}}


def meter_2x(ts: str, wh: float, context: str) -> list[dict[str, Any]]:
    return [{"timestamp": ts, "sampledValue": [{"value": wh, "context": context,
                                               "measurand": "Energy.Active.Import.Register"}]}]


def tx_event(kind: str, seq: int, ts: str, trigger: str, **extra: Any) -> dict[str, Any]:
    info = {"transactionId": "TX-1", **extra.pop("info", {})}
    return {"eventType": kind, "timestamp": ts, "triggerReason": trigger, "seqNo": seq, "transactionInfo": info,
            **extra}
