"""Back-end requests arriving on MQTT: parsing, validation, and the one response each gets."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from adapter.ocpp.errors import OcppError
from adapter.ocpp.timestamps import now_iso
from adapter.ocpp.validation import validate
from adapter.ocpp.versions import Version, backend_actions
from adapter.security import password_change

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# A request holds its charger's request queue until answered or timed out: a mistyped deadline (ms for s)
# would hold it for days behind a charger that never answers.
MAX_TIMEOUT_S = 300.0


class RequestStatus:
    OK = "ok"
    CALL_ERROR = "call_error"
    TIMEOUT = "timeout"
    NOT_CONNECTED = "not_connected"
    INVALID_REQUEST = "invalid_request"
    ADAPTER_ERROR = "adapter_error"  # the adapter failed serving it; whether the charger acted is unknown


@dataclass(slots=True)
class BackendRequest:
    charger_id: str
    namespace: str
    request_id: str
    operation: str
    payload: dict[str, Any]
    deadline: float  # loop time
    received: float
    done: asyncio.Future[dict[str, Any]] | None = field(default=None)
    warnings: list[str] = field(default_factory=list)  # what was repaired in the payload


class InvalidRequest(ValueError):
    pass


def parse_body(body: bytes) -> tuple[dict[str, Any], float | None]:
    """The body is the OCPP payload, or ``{"payload": {...}, "timeout_s": N}`` to set its own deadline."""
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object")
    if isinstance(data.get("payload"), dict) and set(data) <= {"payload", "timeout_s"}:
        timeout = data.get("timeout_s")
        number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        if timeout is not None and not (number and 0 < timeout <= MAX_TIMEOUT_S):
            raise InvalidRequest(f"timeout_s must be a number of seconds, more than 0 and at most {MAX_TIMEOUT_S:g}")
        return data["payload"], timeout
    return data, None


# A back end's own serializer writes 68 * 0.1 as 6.800000000000001, no multiple of a 1.6 limit's 0.1: lenient mode
# sends the nearest multiple. Nothing else is repaired, since a back end can fix what it sends.
_BACKEND_REPAIRS = frozenset({"multipleOf"})


def check(version: Version, namespace: str, request_id: str, operation: str, payload: dict[str, Any], *,
          strict: bool) -> tuple[dict[str, Any], list[str]]:
    """The payload to send (float noise repaired unless ``strict``) and what was repaired."""
    if not _REQUEST_ID.match(request_id) or not _REQUEST_ID.match(namespace):
        raise InvalidRequest("namespace and request id must be 1-64 characters of [A-Za-z0-9._:-]")
    if operation not in backend_actions(version):
        raise InvalidRequest(f"{operation} is not an OCPP {version.value} action a back end can send")
    try:
        payload, warnings = validate(version, operation, payload, response=False, strict=strict,
                                     repairs=_BACKEND_REPAIRS)
    except OcppError as exc:
        raise InvalidRequest(f"payload invalid for {operation}: {exc.description}") from None
    try:
        password_change.check(operation, payload)
    except ValueError as exc:
        raise InvalidRequest(f"new charger password refused: {exc}") from None
    return payload, warnings


def response_body(charger_id: str, namespace: str, request_id: str, operation: str, status: str, *,
                  payload: dict[str, Any] | None = None, error: dict[str, Any] | None = None,
                  warnings: list[str] | None = None) -> bytes:
    """``warnings`` only when the request's payload was repaired, as on events."""
    body: dict[str, Any] = {
        "charger_id": charger_id, "namespace": namespace, "request_id": request_id, "operation": operation,
        "status": status, "payload": payload, "error": error,
        "responded_at": now_iso(),
    }
    if warnings:
        body["warnings"] = warnings
    return orjson.dumps(body)
