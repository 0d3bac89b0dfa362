"""Pure pieces of the simulator: histograms, fleet planning, profile composition, relay framing, markers."""

from __future__ import annotations

import random

import orjson
import pytest

from simulator import plan, profiles
from simulator.baseline_relay import canned_result
from simulator.model import MARKER_MEASURAND
from simulator.mqtt_probe import LatencyProbe
from simulator.stats import Histogram, Stats, merged


def test_histogram_percentiles_are_within_two_percent_and_merge_exactly() -> None:
    rng = random.Random(1)
    values = [rng.lognormvariate(0, 1) for _ in range(20_000)]
    first, second = Histogram(), Histogram()
    for n, value in enumerate(values):
        (first if n % 2 else second).add(value)
    first.merge(second)
    exact = sorted(values)
    for p in (50, 95, 99):
        estimate = first.percentile(p)
        assert estimate is not None
        assert abs(estimate - exact[int(len(exact) * p / 100) - 1]) / exact[int(len(exact) * p / 100) - 1] < 0.02
    assert first.count == len(values)
    assert Histogram().summary()["p99"] is None


def test_stats_merge_sums_counts_and_keeps_extremes() -> None:
    a = Stats(chargers=2, accepted=2, started_at=10.0, last_first_accept=12.0, errors={"x": 1})
    b = Stats(chargers=3, accepted=1, started_at=9.0, last_first_accept=11.0, errors={"x": 2, "y": 1})
    total = merged([a, b])
    assert (total.chargers, total.accepted, total.started_at, total.last_first_accept) == (5, 3, 9.0, 12.0)
    assert total.errors == {"x": 3, "y": 1} and total.error_count == 4


def test_the_fleet_plan_follows_the_mix_and_spreads_it_over_workers() -> None:
    mix = plan.parse_mix("1.6=50,2.0.1=40,2.1=10", ("1.6", "2.0.1", "2.1"))
    specs = plan.fleet("run1", 1000, mix, plan.parse_mix("1=30,2=70"), plan.source_addresses("3"))
    counts = {v: sum(1 for s in specs if s.version == v) for v in mix}
    assert counts == {"1.6": 500, "2.0.1": 400, "2.1": 100}
    assert sum(s.connectors for s in specs) == 300 + 2 * 700
    assert specs[17].charger_id == "sim-run1-17"
    assert {s.source_address for s in specs} == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
    shares = plan.split(specs, 3)
    assert [len(s) for s in shares] == [334, 333, 333]
    assert abs(sum(1 for s in shares[0] if s.version == "2.1") - 33) <= 1


@pytest.mark.parametrize("text", ["", "1.6=-1", "3.0=10"])
def test_bad_mixes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        plan.parse_mix(text, ("1.6", "2.0.1", "2.1"))


def test_run_ids_must_be_safe_in_charger_ids() -> None:
    with pytest.raises(ValueError):
        plan.fleet("a/b", 1, {"1.6": 1}, {"1": 1}, [])


def _profile(purpose: str, limit: float, stack: int = 0, connector: int = 0, unit: str = "A",
             **fields: object) -> profiles.Profile:
    return profiles.Profile(id=stack * 10 + connector + int(limit), stack_level=stack, purpose=purpose,
                            connector=connector, kind=str(fields.pop("kind", "Absolute")), unit=unit,
                            periods=(profiles.Period(0, limit),), received_at=1000.0, **fields)  # type: ignore[arg-type]


def limit(installed: list[profiles.Profile], tx: str | None = "t1", now: float = 1010.0) -> float | None:
    return profiles.limit_amps(installed, 1, tx, 1000.0, now, 230.0, 3)


def test_profile_composition() -> None:
    default = _profile(profiles.TX_DEFAULT, 20.0)
    assert limit([]) is None
    assert limit([default]) == 20.0
    assert limit([default, _profile(profiles.TX_DEFAULT, 12.0, stack=1)]) == 12.0  # higher stack level wins
    assert limit([default, _profile(profiles.TX_DEFAULT, 16.0, connector=1)]) == 16.0  # own connector first
    tx = _profile(profiles.TX, 25.0, connector=1, transaction_id="t1")
    assert limit([default, tx]) == 25.0  # a transaction profile overrides the default
    assert limit([default, tx], tx="t2") == 20.0  # ...only for its transaction
    assert limit([default, tx, _profile(profiles.MAX, 8.0)]) == 8.0  # the charger maximum caps everything
    assert limit([_profile(profiles.MAX, 6900.0, unit="W")]) == pytest.approx(10.0)  # W over 3 x 230 V


def test_profile_schedules_in_time() -> None:
    stepped = profiles.Profile(id=1, stack_level=0, purpose=profiles.TX_DEFAULT, connector=0, kind="Relative",
                               unit="A", periods=(profiles.Period(0, 10.0), profiles.Period(60, 20.0)),
                               received_at=0.0, duration=120)
    assert limit([stepped], now=1030.0) == 10.0
    assert limit([stepped], now=1090.0) == 20.0
    assert limit([stepped], now=1130.0) is None  # past its duration
    daily = _profile(profiles.TX_DEFAULT, 7.0, kind="Recurring", recurrency="Daily", start=0.0, duration=3600)
    assert limit([daily], now=86_400.0 * 3 + 100) == 7.0
    assert limit([daily], now=86_400.0 * 3 + 4000) is None
    expired = _profile(profiles.MAX, 5.0, valid_to=1005.0)
    assert limit([expired]) is None


def test_installing_replaces_and_clearing_matches_criteria() -> None:
    a, b = _profile(profiles.TX_DEFAULT, 10.0), _profile(profiles.TX_DEFAULT, 11.0)
    assert profiles.install([a], b) == [b]  # same purpose, stack level and connector
    kept, removed = profiles.clear([a, _profile(profiles.MAX, 5.0)], None, None, profiles.MAX, None)
    assert (kept, removed) == ([a], 1)


def test_the_relay_answers_a_call_by_position() -> None:
    answer = canned_result(b'[2,"abc-1","MeterValues",{"connectorId":1}]')
    assert answer is not None
    frame = orjson.loads(answer)
    assert frame[:2] == [3, "abc-1"] and frame[2]["status"] == "Accepted"
    assert canned_result(b'[3,"x",{}]') is None


def test_the_probe_reads_markers_from_events_and_raw_frames() -> None:
    epoch = 1_000_000.0
    event_probe = LatencyProbe(epoch, raw_frames=False)
    first, second = event_probe.mark(epoch), event_probe.mark(epoch + 10)
    event = {"data": {"samples": [{"measurand": MARKER_MEASURAND, "value": 12_000_000.0}]}}
    event_probe.on_message("ocpp/cp1/meter_values", orjson.dumps(event))
    event_probe.on_message("ocpp/cp1/status", b"{}")
    assert (second.count, first.count, event_probe.unmarked) == (1, 0, 0)

    raw_probe = LatencyProbe(epoch, raw_frames=True)
    frame = [2, "1", "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": "x", "sampledValue": [
        {"value": "5000000", "measurand": MARKER_MEASURAND}]}]}]
    raw_probe.on_message("relay/cp1", orjson.dumps(frame))
    raw_probe.on_message("relay/cp1", orjson.dumps([2, "2", "Heartbeat", {}]))
    assert (raw_probe.before_stages.count, raw_probe.unmarked) == (1, 1)
