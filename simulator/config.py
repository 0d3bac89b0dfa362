"""A charger's configuration: OCPP 1.6 keys, with the 2.x component/variable names that map onto them.

One store serves both versions, so a back end that sets the heartbeat interval through ChangeConfiguration
or SetVariables changes the same behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Key:
    default: str
    readonly: bool = False
    kind: str = "int"  # int, bool or str


KEYS: dict[str, Key] = {
    "HeartbeatInterval": Key("300"),
    "MeterValueSampleInterval": Key("60"),
    "ClockAlignedDataInterval": Key("0"),
    "ConnectionTimeOut": Key("60"),
    "WebSocketPingInterval": Key("0"),
    "AuthorizeRemoteTxRequests": Key("false", kind="bool"),
    "LocalPreAuthorize": Key("false", kind="bool"),
    "MeterValuesSampledData": Key("Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage",
                                  kind="str"),
    "NumberOfConnectors": Key("1", readonly=True),
    "SupportedFeatureProfiles": Key("Core,SmartCharging,RemoteTrigger", readonly=True, kind="str"),
    "ChargeProfileMaxStackLevel": Key("8", readonly=True),
    "ChargingScheduleAllowedChargingRateUnit": Key("Current,Power", readonly=True, kind="str"),
    "ChargingScheduleMaxPeriods": Key("24", readonly=True),
    "MaxChargingProfilesInstalled": Key("16", readonly=True),
}

# 2.x (component, variable) -> the 1.6 key holding the same setting.
V2_NAMES: dict[tuple[str, str], str] = {
    ("OCPPCommCtrlr", "HeartbeatInterval"): "HeartbeatInterval",
    ("OCPPCommCtrlr", "WebSocketPingInterval"): "WebSocketPingInterval",
    ("SampledDataCtrlr", "TxUpdatedInterval"): "MeterValueSampleInterval",
    ("SampledDataCtrlr", "TxUpdatedMeasurands"): "MeterValuesSampledData",
    ("AlignedDataCtrlr", "Interval"): "ClockAlignedDataInterval",
    ("TxCtrlr", "EVConnectionTimeOut"): "ConnectionTimeOut",
    ("AuthCtrlr", "AuthorizeRemoteStart"): "AuthorizeRemoteTxRequests",
    ("AuthCtrlr", "LocalPreAuthorize"): "LocalPreAuthorize",
    ("SmartChargingCtrlr", "ProfileStackLevel"): "ChargeProfileMaxStackLevel",
    ("SmartChargingCtrlr", "RateUnit"): "ChargingScheduleAllowedChargingRateUnit",
    ("SmartChargingCtrlr", "PeriodsPerSchedule"): "ChargingScheduleMaxPeriods",
    ("SmartChargingCtrlr", "Entries"): "MaxChargingProfilesInstalled",
}
V2_COMPONENTS = {component for component, _ in V2_NAMES}

ACCEPTED, REJECTED, NOT_SUPPORTED = "Accepted", "Rejected", "NotSupported"


def valid(key: Key, value: str) -> bool:
    if key.kind == "int":
        return value.isdigit()
    if key.kind == "bool":
        return value in ("true", "false")
    return True


class Configuration:
    """Current values, seeded from the defaults and a few per-charger facts."""

    __slots__ = ("values",)

    def __init__(self, overrides: dict[str, str]) -> None:
        self.values = {name: key.default for name, key in KEYS.items()} | overrides

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def number(self, name: str) -> int:
        return int(self.values[name])

    def set(self, name: str, value: str) -> str:
        """Apply a change as a charger would: ACCEPTED, REJECTED (read-only or bad value) or NOT_SUPPORTED."""
        key = KEYS.get(name)
        if key is None:
            return NOT_SUPPORTED
        if key.readonly or not valid(key, value):
            return REJECTED
        self.values[name] = value
        return ACCEPTED
