"""The canonical event envelope of DESIGN.md §3."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import orjson

from adapter.normalize.events import EventDraft
from adapter.ocpp.timestamps import parse_timestamp


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an event came from: identical for retries of the same charger message, so ids are stable."""

    charger_id: str
    ocpp_version: str
    adapter_id: str
    received_at: str
    source: bytes  # the charger's frame as received


def event_id(origin: Origin, index: int) -> str:
    digest = hashlib.blake2b(origin.source, digest_size=16, key=origin.charger_id.encode()[:64])
    digest.update(index.to_bytes(2, "big"))
    return digest.hexdigest()


def utc(timestamp: str) -> str:
    """The envelope's times are UTC (DESIGN §3); a charger's local offset is converted, the instant kept."""
    if timestamp.endswith("Z"):
        return timestamp
    try:
        return parse_timestamp(timestamp).astimezone(UTC).isoformat().replace("+00:00", "Z")
    except ValueError:  # RFC 3339 forms Python does not read (a leap second): passed on as the charger sent it
        return timestamp


def envelope(draft: EventDraft, origin: Origin, index: int, warnings: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": event_id(origin, index),
        "type": draft.type,
        "charger_id": origin.charger_id,
        "ocpp_version": origin.ocpp_version,
        "received_at": origin.received_at,
        "timestamp": utc(draft.timestamp) if draft.timestamp else origin.received_at,
        "adapter_id": origin.adapter_id,
        "data": draft.data,
    }
    all_warnings = warnings + draft.warnings
    if all_warnings:
        body["warnings"] = all_warnings
    return body


def encode(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)
