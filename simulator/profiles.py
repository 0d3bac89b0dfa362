"""Charging profiles in one version-neutral shape, and the limit they impose on a connector right now.

The simulated current draw is the vehicle's maximum capped by this limit, so the meter values a charger
reports show whether a profile sent through the adapter was applied. The composite follows OCPP's rules
in a simplified form: within a purpose the highest stack level wins, a transaction profile overrides the
default one, and the charger-wide maximum caps both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX, TX_DEFAULT, TX, OTHER = "max", "tx_default", "tx", "other"

# OCPP purposes of every version; purposes this model does not simulate are kept but limit nothing.
PURPOSES = {
    "ChargePointMaxProfile": MAX,
    "ChargingStationMaxProfile": MAX,
    "ChargingStationExternalConstraints": MAX,
    "TxDefaultProfile": TX_DEFAULT,
    "TxProfile": TX,
}

_RECURRENCE_S = {"Daily": 86_400, "Weekly": 604_800}


@dataclass(frozen=True, slots=True)
class Period:
    start_s: int
    limit: float | None  # in the schedule's unit; None: the period sets no limit (2.1 setpoints etc.)
    phases: int | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    id: int
    stack_level: int
    purpose: str  # MAX, TX_DEFAULT or TX
    connector: int  # 0 = the whole charger
    kind: str  # Absolute, Relative or Recurring
    unit: str  # "A" or "W"
    periods: tuple[Period, ...]
    received_at: float  # wall time: the start of an Absolute schedule that names none
    start: float | None = None  # wall time of startSchedule
    duration: int | None = None
    recurrency: str | None = None
    transaction_id: str | None = None
    valid_from: float | None = None
    valid_to: float | None = None


def wall_time(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso).timestamp()


def parse(profile: dict[str, Any], profile_id: int, schedule: dict[str, Any], connector: int,
          received_at: float) -> Profile:
    """Build a Profile from the fields both versions share; the dialect picks the id and schedule.

    Raises KeyError/ValueError/TypeError on a malformed payload, which the link answers as a CALLERROR.
    """
    periods = tuple(Period(int(p["startPeriod"]), None if p.get("limit") is None else float(p["limit"]),
                           p.get("numberPhases")) for p in schedule["chargingSchedulePeriod"])
    transaction_id = profile.get("transactionId")
    return Profile(
        id=profile_id,
        stack_level=int(profile["stackLevel"]),
        purpose=PURPOSES.get(profile["chargingProfilePurpose"], OTHER),
        connector=connector,
        kind=profile["chargingProfileKind"],
        unit=schedule["chargingRateUnit"],
        periods=periods,
        received_at=received_at,
        start=wall_time(schedule.get("startSchedule")),
        duration=schedule.get("duration"),
        recurrency=profile.get("recurrencyKind"),
        transaction_id=None if transaction_id is None else str(transaction_id),
        valid_from=wall_time(profile.get("validFrom")),
        valid_to=wall_time(profile.get("validTo")),
    )


def _schedule_limit_a(profile: Profile, now: float, tx_started: float | None, volts: float,
                      phases: int) -> float | None:
    if (profile.valid_from is not None and now < profile.valid_from) or (
            profile.valid_to is not None and now > profile.valid_to):
        return None
    if profile.kind == "Relative":
        origin = tx_started if tx_started is not None else profile.received_at
    else:
        origin = profile.start if profile.start is not None else profile.received_at
    elapsed = now - origin
    if profile.kind == "Recurring" and profile.recurrency in _RECURRENCE_S:
        elapsed %= _RECURRENCE_S[profile.recurrency]
    if elapsed < 0 or (profile.duration is not None and elapsed > profile.duration):
        return None
    current: Period | None = None
    for period in profile.periods:
        if period.start_s <= elapsed:
            current = period
    if current is None or current.limit is None:
        return None
    if profile.unit == "W":
        return current.limit / (volts * (current.phases or phases))
    return current.limit


def _top(candidates: list[Profile], now: float, tx_started: float | None, volts: float,
         phases: int) -> float | None:
    """The limit of the highest stack level that is in force now."""
    for profile in sorted(candidates, key=lambda p: p.stack_level, reverse=True):
        limit = _schedule_limit_a(profile, now, tx_started, volts, phases)
        if limit is not None:
            return limit
    return None


def limit_amps(profiles: list[Profile], connector: int, transaction_id: str | None, tx_started: float | None,
               now: float, volts: float, phases: int) -> float | None:
    """The current limit in amperes on a connector, or None when no profile limits it."""
    charger_max = _top([p for p in profiles if p.purpose == MAX], now, tx_started, volts, phases)
    tx_limit = None
    if transaction_id is not None:
        tx_limit = _top([p for p in profiles if p.purpose == TX and p.connector in (0, connector)
                         and p.transaction_id in (None, transaction_id)], now, tx_started, volts, phases)
    if tx_limit is None:
        own = [p for p in profiles if p.purpose == TX_DEFAULT and p.connector == connector]
        tx_limit = _top(own or [p for p in profiles if p.purpose == TX_DEFAULT and p.connector == 0],
                        now, tx_started, volts, phases)
    limits = [limit for limit in (charger_max, tx_limit) if limit is not None]
    return min(limits) if limits else None


def install(profiles: list[Profile], new: Profile) -> list[Profile]:
    """A profile replaces one with the same id, or with the same purpose, stack level and connector."""
    kept = [p for p in profiles if p.id != new.id and not (
        p.purpose == new.purpose and p.stack_level == new.stack_level and p.connector == new.connector)]
    return [*kept, new]


def clear(profiles: list[Profile], profile_id: int | None, connector: int | None, purpose: str | None,
          stack_level: int | None) -> tuple[list[Profile], int]:
    """Remove the profiles matching every criterion given; returns the rest and how many went."""
    def matches(p: Profile) -> bool:
        if profile_id is not None:
            return p.id == profile_id
        return ((connector is None or p.connector == connector)
                and (purpose is None or p.purpose == purpose)
                and (stack_level is None or p.stack_level == stack_level))

    kept = [p for p in profiles if not matches(p)]
    return kept, len(profiles) - len(kept)


def drop_transaction(profiles: list[Profile], transaction_id: str) -> list[Profile]:
    """Transaction profiles end with their transaction."""
    return [p for p in profiles if not (p.purpose == TX and p.transaction_id == transaction_id)]
