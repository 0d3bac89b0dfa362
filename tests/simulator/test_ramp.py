"""The throughput ramp's choice of the next stage's rate."""

from __future__ import annotations

from simulator.scenarios import RunOptions, next_rate

OPTS = RunOptions(url="ws://x", start_rate=1000.0, rate_step=2.0, refine_stages=2)


def stage(rate: float, sustained: bool) -> dict[str, object]:
    return {"offered_msgs_per_s": rate, "sustained": sustained}


def test_the_ramp_grows_until_a_stage_fails_then_bisects_the_gap() -> None:
    results = [stage(1000, True), stage(2000, True)]
    assert next_rate([], OPTS) == 1000
    assert next_rate(results, OPTS) == 4000
    results.append(stage(4000, False))
    assert next_rate(results, OPTS) == 3000  # between the best sustained and the failed rate
    results.append(stage(3000, False))
    assert next_rate(results, OPTS) == 2500  # the failed bound moves down
    results.append(stage(2500, True))
    assert next_rate(results, OPTS) is None  # two refinement stages used


def test_no_refinement_without_a_sustained_stage_or_when_switched_off() -> None:
    assert next_rate([stage(1000, False)], OPTS) is None
    plain = RunOptions(url="ws://x", start_rate=1000.0, rate_step=2.0)
    assert next_rate([stage(1000, True), stage(2000, False)], plain) is None
