"""JSON Schemas of the canonical events: the contract back ends (and the Glue tables) rely on.

``docs/events/*.schema.json`` is written from here (``python -m adapter.normalize.event_schemas``); a test
keeps the two equal and validates every published event against them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "events"

_STR = {"type": "string"}
_OPT_STR = {"type": ["string", "null"]}
_OPT_INT = {"type": ["integer", "null"]}
_OPT_NUM = {"type": ["number", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_OPT_TIME = {"type": ["string", "null"], "format": "date-time"}

STATUSES = ["available", "occupied", "reserved", "unavailable", "faulted"]
TRANSACTION_TOPICS = ("transaction_started", "transaction_updated", "transaction_ended")

_SAMPLE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["timestamp", "measurand", "value", "unit"],
    "properties": {
        "timestamp": _TIME,
        "measurand": _STR,
        "value": {"type": "number"},
        "unit": _STR,
        "phase": _OPT_STR,
        "location": _OPT_STR,
        "context": _OPT_STR,
        "original_value": _OPT_STR,
    },
}

_LOCATION = {"evse_id": _OPT_INT, "connector_id": _OPT_INT}

DATA_SCHEMAS: dict[str, dict[str, Any]] = {
    "status": {
        "required": ["evse_id", "connector_id", "status", "original_status"],
        "properties": {
            **_LOCATION,
            "status": {"enum": STATUSES},
            "original_status": _STR,
            "error_code": _OPT_STR,
            "info": _OPT_STR,
            "vendor_error_code": _OPT_STR,
        },
    },
    "meter_values": {
        "required": ["evse_id", "connector_id", "transaction_id", "samples"],
        "properties": {
            **_LOCATION,
            "transaction_id": _OPT_STR,
            "samples": {"type": "array", "items": _SAMPLE},
        },
    },
    "transaction_started": {
        "required": ["transaction_id", "evse_id", "connector_id", "id_token", "meter_start_wh", "started_at"],
        "properties": {
            "transaction_id": _STR,
            **_LOCATION,
            "id_token": _OPT_STR,
            "meter_start_wh": _OPT_NUM,
            "started_at": _TIME,
            "trigger_reason": _OPT_STR,
            "remote_start_id": _OPT_INT,
            "reservation_id": _OPT_INT,
        },
    },
    "transaction_updated": {
        "required": ["transaction_id", "evse_id", "connector_id", "charging_state", "trigger_reason"],
        "properties": {
            "transaction_id": _STR,
            **_LOCATION,
            "charging_state": _OPT_STR,
            "trigger_reason": _OPT_STR,
            "id_token": _OPT_STR,
        },
    },
    "transaction_ended": {
        "required": ["transaction_id", "evse_id", "connector_id", "id_token", "meter_stop_wh", "stopped_at",
                     "stop_reason"],
        "properties": {
            "transaction_id": _STR,
            **_LOCATION,
            "id_token": _OPT_STR,
            "meter_stop_wh": _OPT_NUM,
            "energy_wh": _OPT_NUM,
            "stopped_at": _TIME,
            "stop_reason": _STR,
            "trigger_reason": _OPT_STR,
        },
    },
    "boot": {
        "required": ["vendor", "model", "serial", "firmware", "reason", "status"],
        "properties": {
            "vendor": _STR,
            "model": _STR,
            "serial": _OPT_STR,
            "firmware": _OPT_STR,
            "reason": _OPT_STR,
            "status": {"enum": ["Accepted", "Pending", "Rejected"]},
        },
    },
    "authorize": {
        "required": ["id_token", "token_type", "status"],
        "properties": {"id_token": _STR, "token_type": _OPT_STR, "status": _STR},
    },
    "charger_message": {
        "required": ["action", "request", "response"],
        "properties": {
            "action": _STR,
            "request": {"type": "object"},
            "response": {"type": ["object", "null"]},
        },
    },
    "lifecycle": {
        "required": ["event", "reason", "session_id", "remote_address"],
        "properties": {
            "event": {"enum": ["connected", "disconnected"]},
            "reason": _OPT_STR,
            "session_id": _STR,
            "remote_address": _OPT_STR,
            "close_code": _OPT_INT,
        },
    },
}


def event_schema(event_type: str) -> dict[str, Any]:
    data = DATA_SCHEMAS[event_type]
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": f"ocpp-gateway/events/{event_type}.schema.json",
        "title": f"{event_type} event",
        "type": "object",
        "additionalProperties": False,
        "required": ["event_id", "type", "charger_id", "ocpp_version", "received_at", "timestamp",
                     "adapter_id", "data"],
        "properties": {
            "event_id": _STR,
            "type": {"const": event_type},
            "charger_id": _STR,
            "ocpp_version": {"enum": ["1.6", "2.0", "2.0.1", "2.1"]},
            "received_at": _TIME,
            "timestamp": _TIME,
            "adapter_id": _STR,
            "warnings": {"type": "array", "items": _STR},
            "data": {"type": "object", "additionalProperties": False, **data},
        },
    }


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type in DATA_SCHEMAS:
        path = directory / f"{event_type}.schema.json"
        path.write_text(json.dumps(event_schema(event_type), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(p)
