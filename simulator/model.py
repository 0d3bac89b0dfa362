"""The version-neutral state of a simulated charger, and the seams between behaviour and OCPP version.

`charger.py` decides *when* things happen; a `Dialect` (``v16.py``, ``v2.py``) decides *what the
messages look like* and how requests from the central system translate into the neutral operations of
`Station`. Status and stop-reason vocabularies are OCPP 1.6's; the 2.x dialect maps them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from simulator.config import Configuration
from simulator.profiles import Profile
from simulator.stats import Stats

Payload = dict[str, Any]
Message = tuple[str, Payload]  # (action, payload) of a CALL

VERSIONS = ("1.6", "2.0.1", "2.1")
SUBPROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}

# Neutral connector statuses (1.6 names).
AVAILABLE, PREPARING, CHARGING, FINISHING = "Available", "Preparing", "Charging", "Finishing"
FAULTED, UNAVAILABLE = "Faulted", "Unavailable"

# Neutral stop reasons (1.6 names).
LOCAL, REMOTE, EV_DISCONNECTED, DEAUTHORIZED = "Local", "Remote", "EVDisconnected", "DeAuthorized"
HARD_RESET, SOFT_RESET, UNLOCK_COMMAND = "HardReset", "SoftReset", "UnlockCommand"

# Outcomes of an unlock request, in neutral terms.
UNLOCKED, UNKNOWN_CONNECTOR, ONGOING_TRANSACTION = "Unlocked", "UnknownConnector", "OngoingTransaction"

# The extra sample that carries a send timestamp for end-to-end latency (see mqtt_probe.py).
MARKER_MEASURAND = "Energy.Active.Import.Interval"


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    charger_id: str
    version: str
    connectors: int
    source_address: str | None = None


@dataclass(frozen=True)
class Behaviour:
    """How a fleet behaves; shared by every charger of a run and picklable for worker processes."""

    idle_mean_s: float = 120.0  # mean time a connector stays free before the next plug-in
    session_mean_s: float = 600.0  # mean charging session length
    meter_interval_s: int = 60  # initial MeterValueSampleInterval / TxUpdatedInterval
    fault_probability: float = 0.02  # chance that a plug-in finds the connector faulted instead
    fault_duration_s: float = 30.0
    call_timeout_s: float = 30.0
    boot_retry_s: float = 10.0  # retry interval after Pending/Rejected when the server names none
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    reboot_s: float = 1.0  # how long a reset takes before reconnecting
    ws_ping_interval_s: float | None = None  # WebSocket pings; OCPP heartbeats are the liveness signal
    ev_max_current_a: float = 32.0
    phases: int = 3
    volts: float = 230.0
    # Wall time from which a timestamp marker in periodic meter values counts (None: no marker).
    marker_epoch: float | None = None


@dataclass(slots=True)
class Transaction:
    id: str
    id_tag: str
    meter_start_wh: int
    started_at: float  # wall time
    remote_start_id: int | None = None
    seq: int = 0  # 2.x TransactionEvent seqNo

    def next_seq(self) -> int:
        seq = self.seq
        self.seq += 1
        return seq


@dataclass(slots=True)
class Connector:
    id: int
    status: str = AVAILABLE
    error_code: str = "NoError"
    operative: bool = True
    inoperative_after_tx: bool = False
    tx: Transaction | None = None
    next_event: float = math.inf  # loop time of the next plug-in, unplug or fault recovery
    meter_at: float = math.inf  # loop time of the next periodic meter value
    energy_wh: float = 0.0
    current_a: float = 0.0
    metered_at: float = 0.0  # wall time the energy register was last advanced
    reported: str | None = None  # last status a dialect reported (2.x reports only changes)


@dataclass(frozen=True, slots=True)
class Sample:
    measurand: str
    value: float
    unit: str
    context: str


class Station(Protocol):
    """What a dialect may read from and ask of a charger."""

    spec: ChargerSpec
    connectors: list[Connector]
    config: Configuration
    profiles: list[Profile]

    def connector(self, connector_id: int) -> Connector | None: ...

    def samples(self, connector: Connector, context: str) -> list[Sample]: ...

    def remote_start(self, connector_id: int | None, id_tag: str, remote_start_id: int | None,
                     profile: Profile | None) -> Connector | None: ...

    def remote_stop(self, transaction_id: str) -> bool: ...

    def reset(self, hard: bool, when_idle: bool) -> bool: ...  # False: scheduled until idle

    def trigger(self, message: str, connector_id: int | None) -> None: ...

    def add_profile(self, profile: Profile) -> bool: ...

    def clear_profiles(self, profile_id: int | None, connector: int | None, purpose: str | None,
                       stack_level: int | None) -> int: ...

    def change_availability(self, connector_id: int | None, operative: bool) -> str: ...

    def unlock(self, connector_id: int, end_transaction: bool) -> str: ...

    def configured(self, name: str) -> None: ...


class Dialect(Protocol):
    """Message shapes of one OCPP version."""

    version: str
    subprotocol: str
    format_violation: str  # 1.6 spells it FormationViolation
    trigger_messages: frozenset[str]

    def boot(self, station: Station, reason: str) -> Message: ...

    def status(self, station: Station, connector: Connector) -> Message | None: ...

    def authorize(self, id_tag: str) -> Message: ...

    def authorized(self, response: Payload) -> bool: ...

    def tx_start(self, station: Station, connector: Connector, tx: Transaction) -> Message: ...

    def tx_started(self, tx: Transaction, response: Payload) -> bool: ...

    def meter(self, station: Station, connector: Connector, context: str) -> Message: ...

    def tx_stop(self, station: Station, connector: Connector, tx: Transaction, reason: str) -> Message: ...

    def triggered(self, station: Station, message: str, connector_id: int | None) -> list[Message]: ...

    def handle(self, station: Station, action: str, payload: Payload) -> Payload: ...


@dataclass
class Storm:
    """A reconnect storm in progress: set by the fleet, read by its chargers."""

    generation: int = 0
    at: float = 0.0  # wall time

    def start(self, at: float) -> None:
        self.generation += 1
        self.at = at


@dataclass
class FleetContext:
    """What every charger of one process shares."""

    url: str
    behaviour: Behaviour
    stats: Stats
    storm: Storm = field(default_factory=Storm)
    # Throughput runs: (wall time, meter interval) stages overriding the configured interval.
    rate_plan: list[tuple[float, float]] = field(default_factory=list)
