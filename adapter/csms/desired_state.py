"""Desired state (the shadow's ``desired`` sections) as the OCPP requests that apply it, and their outcomes.

Sans-I/O: each section maps a key and its desired value to one request in the charger's version, or raises
ValueError for what no request can express. The caller validates the request and sends it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from adapter.ocpp.timestamps import now_iso
from adapter.ocpp.versions import Version
from adapter.security import password_change

Request = tuple[str, dict[str, Any]]

# The profile a desired charging limit sets: one id the adapter owns, so setting it again replaces it and
# clearing it removes only it, never a profile the back end or the charger's own smart charging set.
CHARGING_LIMIT_PROFILE_ID = 1_000_001
NO_LIMIT = "none"
_AVAILABILITY = ("Operative", "Inoperative")
# One string, not {"limit", "unit"}: a shadow delta names only the fields that changed (IoT Core's, and the local
# stand-in's), so a new limit in the same unit would arrive without its unit.
_LIMIT = re.compile(r"(\d+(?:\.\d+)?) ?(W|A)")
# What the charger did (or will do) as desired. Scheduled: an availability change made once its transaction
# ends. Unknown, to ClearChargingProfile: there was no limit to clear, which is what was desired.
_APPLIED = {"Accepted", "RebootRequired", "Scheduled"}
_APPLIED_BY = {"ClearChargingProfile": {"Accepted", "Unknown"}}


def configuration_request(version: Version, key: str, value: Any) -> Request:
    """1.6 keys go through ChangeConfiguration; 2.x keys are ``Component.Variable`` for SetVariables. A value is
    sent as text. Not an object: a delta names only its fields that changed, which would be sent as the value."""
    if isinstance(value, dict):
        raise ValueError(f"configuration values are strings, numbers, booleans or lists, got an object for {key!r}")
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    payload: dict[str, Any]
    if version is Version.V16:
        operation, payload = "ChangeConfiguration", {"key": key, "value": text}
    else:
        component, sep, variable = key.partition(".")
        if not sep or not component or not variable:
            raise ValueError(f"2.x configuration keys are Component.Variable, got {key!r}")
        operation, payload = "SetVariables", {"setVariableData": [{
            "component": {"name": component}, "variable": {"name": variable}, "attributeValue": text}]}
    password_change.check(operation, payload)
    return operation, payload


def _evse(key: str) -> int:
    if not (key.isascii() and key.isdigit()):
        raise ValueError(f"keys are EVSE ids (0: the whole charger), got {key!r}")
    return int(key)


def availability_request(version: Version, key: str, value: Any) -> Request:
    """Keys are EVSE ids (1.6: connector ids), ``"0"`` the whole charger; values Operative or Inoperative."""
    if value not in _AVAILABILITY:
        raise ValueError(f"availability is Operative or Inoperative, got {value!r}")
    evse = _evse(key)
    if version is Version.V16:
        return "ChangeAvailability", {"connectorId": evse, "type": value}
    return "ChangeAvailability", {"operationalStatus": value, **({"evse": {"id": evse}} if evse else {})}


def charging_limit_request(version: Version, key: str, value: Any) -> Request:
    """``"0"`` (the whole charger) to ``"22000 W"`` or ``"32 A"``: a station-wide maximum profile
    (ChargePointMaxProfile, ChargingStationMaxProfile) in force from now until changed; ``"none"`` clears it.
    Per-EVSE limits belong to smart charging's transaction profiles, not to this maximum."""
    if _evse(key) != 0:
        raise ValueError(f"a charging limit applies to the whole charger, key \"0\", got {key!r}")
    if value == NO_LIMIT:
        return "ClearChargingProfile", ({"id": CHARGING_LIMIT_PROFILE_ID} if version is Version.V16
                                        else {"chargingProfileId": CHARGING_LIMIT_PROFILE_ID})
    match = _LIMIT.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'a charging limit is a number and a unit, "22000 W" or "32 A", or "none"; got {value!r}')
    limit, unit = match.groups()
    period = {"startPeriod": 0, "limit": round(float(limit), 1)}  # 1.6 limits are multiples of 0.1
    profile: dict[str, Any] = {"stackLevel": 0, "chargingProfileKind": "Absolute"}
    schedule: dict[str, Any] = {"startSchedule": now_iso(), "chargingRateUnit": unit,
                                "chargingSchedulePeriod": [period]}
    if version is Version.V16:
        return "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": {
            **profile, "chargingProfileId": CHARGING_LIMIT_PROFILE_ID,
            "chargingProfilePurpose": "ChargePointMaxProfile", "chargingSchedule": schedule}}
    return "SetChargingProfile", {"evseId": 0, "chargingProfile": {
        **profile, "id": CHARGING_LIMIT_PROFILE_ID, "chargingProfilePurpose": "ChargingStationMaxProfile",
        "chargingSchedule": [{"id": 1, **schedule}]}}


Build = Callable[[Version, str, Any], Request]
SECTIONS: dict[str, Build] = {
    "configuration": configuration_request,
    "availability": availability_request,
    "charging_limit": charging_limit_request,
}


def outcome(operation: str, reply: dict[str, Any]) -> tuple[str, bool]:
    """The status to report for a key, and whether the charger did (or will do) as desired."""
    if reply["status"] != "ok":
        return str(reply["status"]), False
    payload = reply["payload"]
    if operation == "SetVariables":
        status = str(payload["setVariableResult"][0]["attributeStatus"])
    else:
        status = str(payload["status"])
    return status, status in _APPLIED_BY.get(operation, _APPLIED)
