"""Back-end requests a central system sends to chargers, per OCPP version.

The `commands` scenario sends these through the adapter's MQTT request topics; the tests send them from a
tiny central system. Reset is left out of the mix on purpose: a reboot per command would turn a latency
measurement into a reconnect storm.
"""

from __future__ import annotations

import random

from simulator.model import Message, Payload


def limit_profile(version: str, limit_a: float, profile_id: int = 100, stack_level: int = 0) -> Payload:
    """SetChargingProfile payload: a charger-wide default limit in amperes, in force from now on."""
    schedule: Payload = {"chargingRateUnit": "A",
                         "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(limit_a, 1)}]}
    if version == "1.6":
        return {"connectorId": 0, "csChargingProfiles": {
            "chargingProfileId": profile_id, "stackLevel": stack_level,
            "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Relative",
            "chargingSchedule": schedule}}
    return {"evseId": 0, "chargingProfile": {
        "id": profile_id, "stackLevel": stack_level, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative", "chargingSchedule": [{"id": profile_id, **schedule}]}}


def _v16(connectors: int, rng: random.Random) -> list[Message]:
    connector = rng.randint(1, connectors)
    return [
        ("GetConfiguration", {"key": ["HeartbeatInterval", "MeterValueSampleInterval"]}),
        ("ChangeConfiguration", {"key": "ConnectionTimeOut", "value": "60"}),
        ("TriggerMessage", {"requestedMessage": "Heartbeat"}),
        ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": connector}),
        ("SetChargingProfile", limit_profile("1.6", rng.choice((16.0, 24.0, 32.0)))),
        ("ClearChargingProfile", {"id": 100}),
        ("ChangeAvailability", {"connectorId": 0, "type": "Operative"}),
        ("RemoteStartTransaction", {"connectorId": connector, "idTag": "BACKEND"}),
        ("RemoteStopTransaction", {"transactionId": rng.randint(1, 1_000_000)}),
        ("UnlockConnector", {"connectorId": connector}),
        ("DataTransfer", {"vendorId": "OcppSim", "messageId": "ping", "data": "hello"}),
    ]


def _v2(version: str, connectors: int, rng: random.Random) -> list[Message]:
    evse = rng.randint(1, connectors)
    heartbeat = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    timeout = {"component": {"name": "TxCtrlr"}, "variable": {"name": "EVConnectionTimeOut"}}
    return [
        ("GetVariables", {"getVariableData": [heartbeat]}),
        ("SetVariables", {"setVariableData": [{**timeout, "attributeValue": "60"}]}),
        ("TriggerMessage", {"requestedMessage": "Heartbeat"}),
        ("TriggerMessage", {"requestedMessage": "StatusNotification",
                            "evse": {"id": evse, "connectorId": 1}}),
        ("SetChargingProfile", limit_profile(version, rng.choice((16.0, 24.0, 32.0)))),
        ("ClearChargingProfile", {"chargingProfileId": 100}),
        ("ChangeAvailability", {"operationalStatus": "Operative"}),
        ("RequestStartTransaction", {"evseId": evse, "remoteStartId": rng.randint(1, 1_000_000),
                                     "idToken": {"idToken": "BACKEND", "type": "ISO14443"}}),
        ("RequestStopTransaction", {"transactionId": f"{rng.getrandbits(64):016x}"}),
        ("UnlockConnector", {"evseId": evse, "connectorId": 1}),
        ("DataTransfer", {"vendorId": "OcppSim", "messageId": "ping", "data": "hello"}),
    ]


def requests_for(version: str, connectors: int, rng: random.Random) -> list[Message]:
    """Every request the mix may send to a charger of this version."""
    return _v16(connectors, rng) if version == "1.6" else _v2(version, connectors, rng)
