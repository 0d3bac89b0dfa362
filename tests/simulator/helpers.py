"""Shared helpers for simulator tests: run chargers in-process, read meter values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from simulator.charger import Charger
from simulator.fleet import Fleet
from simulator.model import Behaviour, ChargerSpec
from simulator.stats import Stats

VERSIONS = ["1.6", "2.0.1", "2.1"]

# Fast timings so a test sees a whole session within a second or two.
FAST = Behaviour(idle_mean_s=1000.0, session_mean_s=1000.0, meter_interval_s=1, fault_probability=0.0,
                 call_timeout_s=5.0, boot_retry_s=0.2, backoff_base_s=0.05, backoff_cap_s=0.5, reboot_s=0.05)


@asynccontextmanager
async def running(url: str, version: str, charger_id: str = "sim-t-1", connectors: int = 1,
                  **behaviour: Any) -> AsyncIterator[tuple[Charger, Stats]]:
    """One charger running against `url` for the duration of the block."""
    stats = Stats()
    spec = ChargerSpec(charger_id, version, connectors)
    fleet = Fleet(url, [spec], replace(FAST, **behaviour), stats, seed=7)
    fleet.start(0)
    try:
        yield fleet.chargers[0], stats
    finally:
        await fleet.stop()


def samples(payload: dict[str, Any]) -> dict[str, float]:
    """measurand -> value of the sampled values in a MeterValues / TransactionEvent / StopTransaction."""
    values = payload.get("meterValue") or payload.get("transactionData") or []
    return {s.get("measurand", "Energy.Active.Import.Register"): float(s["value"])
            for mv in values for s in mv["sampledValue"]}


def tx_id(payload: dict[str, Any]) -> Any:
    """The transaction id a 1.6 MeterValues or a 2.x TransactionEvent refers to."""
    return payload.get("transactionId", payload.get("transactionInfo", {}).get("transactionId"))
