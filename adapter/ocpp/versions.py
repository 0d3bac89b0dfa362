"""OCPP versions, subprotocol negotiation and which side starts which action."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import ocpp


class Version(enum.Enum):
    V16 = "1.6"
    V20 = "2.0"
    V201 = "2.0.1"
    V21 = "2.1"

    @property
    def subprotocol(self) -> str:
        return "ocpp" + self.value

    @property
    def is_2x(self) -> bool:
        return self is not Version.V16

    @property
    def schema_dir(self) -> Path:
        """2.0 is served with the 2.0.1 schemas (see docs/ocpp-versions.md for what differs)."""
        sub = {Version.V16: "v16", Version.V20: "v201", Version.V201: "v201", Version.V21: "v21"}[self]
        return Path(ocpp.__file__).parent / sub / "schemas"


NEWEST_FIRST = (Version.V21, Version.V201, Version.V20, Version.V16)
BY_SUBPROTOCOL = {v.subprotocol: v for v in Version}

_SPLIT = re.compile(r"[\s,]+")


def parse_offered(header_values: Iterable[str]) -> list[str]:
    """Tolerates what real chargers send: empty entries, stray commas, spaces instead of commas, any case."""
    offered: list[str] = []
    for raw in header_values:
        offered.extend(token.lower() for token in _SPLIT.split(raw) if token)
    return offered


def negotiate(offered: Iterable[str], supported: Iterable[Version] = NEWEST_FIRST,
              fallback: Version | None = None) -> Version | None:
    """Newest version both sides offer; ``fallback`` applies only when the charger offered nothing."""
    offered_set = set(offered)
    for version in NEWEST_FIRST:
        if version in supported and version.subprotocol in offered_set:
            return version
    if not offered_set and fallback is not None:
        return fallback
    return None


_CHARGER_16 = frozenset({
    "Authorize", "BootNotification", "DataTransfer", "DiagnosticsStatusNotification",
    "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StartTransaction", "StatusNotification",
    "StopTransaction", "SecurityEventNotification", "SignCertificate", "LogStatusNotification",
    "SignedFirmwareStatusNotification",
})
_CHARGER_201 = frozenset({
    "Authorize", "BootNotification", "ClearedChargingLimit", "DataTransfer", "FirmwareStatusNotification",
    "Get15118EVCertificate", "GetCertificateStatus", "Heartbeat", "LogStatusNotification", "MeterValues",
    "NotifyChargingLimit", "NotifyCustomerInformation", "NotifyDisplayMessages", "NotifyEVChargingNeeds",
    "NotifyEVChargingSchedule", "NotifyEvent", "NotifyMonitoringReport", "NotifyReport",
    "PublishFirmwareStatusNotification", "ReportChargingProfiles", "ReservationStatusUpdate",
    "SecurityEventNotification", "SignCertificate", "StatusNotification", "TransactionEvent",
})
_CHARGER_21 = _CHARGER_201 | {
    "BatterySwap", "ClosePeriodicEventStream", "GetCertificateChainStatus", "NotifyDERAlarm",
    "NotifyDERStartStop", "NotifyPeriodicEventStream", "NotifyPriorityCharging", "NotifySettlement",
    "OpenPeriodicEventStream", "PullDynamicScheduleUpdate", "ReportDERControl", "VatNumberValidation",
}
# Actions either side may start.
BIDIRECTIONAL = frozenset({"DataTransfer"})


def charger_actions(version: Version) -> frozenset[str]:
    """Actions a charger may start (the adapter answers them)."""
    if version is Version.V16:
        return _CHARGER_16
    return _CHARGER_21 if version is Version.V21 else _CHARGER_201


@cache
def all_actions(version: Version) -> frozenset[str]:
    """Every action the version's schemas define."""
    stems = [path.stem for path in version.schema_dir.glob("*.json")]
    if version is Version.V16:
        return frozenset(stem for stem in stems if not stem.endswith("Response"))
    return frozenset(stem.removesuffix("Request") for stem in stems if stem.endswith("Request")) | (
        send_only_actions(version))


@cache
def send_only_actions(version: Version) -> frozenset[str]:
    """2.1 messages defined only as SEND (one schema, no Request/Response pair): they have no CALL form."""
    if version is Version.V16:
        return frozenset()
    return frozenset(p.stem for p in version.schema_dir.glob("*.json")
                     if not p.stem.endswith(("Request", "Response")))


def backend_actions(version: Version) -> frozenset[str]:
    """Actions the back end may send to a charger of this version."""
    return frozenset(a for a in all_actions(version) if a not in charger_actions(version) or a in BIDIRECTIONAL)
