"""The load scenarios: how the fleet behaves, how it starts, and what each one measures.

`run` is the one entry point: it plans the fleet, spreads it over worker processes, shows progress, runs
the scenario's body while the fleet is live, and returns the JSON-ready result.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TextIO
from urllib.parse import urlsplit

from simulator import plan
from simulator.backend import Backend
from simulator.model import Behaviour, ChargerSpec
from simulator.mqtt_probe import LatencyProbe
from simulator.pool import ProcessFleet
from simulator.procs import tree_rss_kb
from simulator.progress import Progress
from simulator.stats import Histogram, Stats
from simulator.worker import WorkerJob

CHARGERS_PER_PROCESS = 10_000  # well inside a process's 20,000 open files
CHARGERS_PER_ADDRESS = 25_000  # below the 28,232 ephemeral ports of one source address
DRAIN_S = 1.0  # quiet time after a throughput stage, for its last events to arrive
SETTLE_S = 10.0  # how long the back end waits for the last command responses


@dataclass
class RunOptions:
    url: str
    chargers: int = 100
    duration: float = 60.0
    scenario: str = "steady"
    mix: dict[str, float] = field(default_factory=lambda: {"1.6": 50.0, "2.0.1": 40.0, "2.1": 10.0})
    connectors: dict[str, float] = field(default_factory=lambda: {"1": 30.0, "2": 70.0})
    processes: int = 0  # 0: one per CHARGERS_PER_PROCESS
    source_addresses: list[str] = field(default_factory=list)
    connect_rate: float | None = None  # chargers per second; None: the scenario's default; 0: all at once
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    behaviour: Behaviour = field(default_factory=Behaviour)
    mqtt_url: str | None = None
    adapter_pid: int | None = None
    command_rate: float = 50.0
    start_rate: float = 500.0  # throughput: offered msg/s of the first stage
    rate_step: float = 1.5  # throughput: each stage offers this much more, until one is not sustained
    stages: int = 8  # throughput: at most this many stages, refinement included
    refine_stages: int = 0  # throughput: then bisect this often between the last sustained and the failed rate
    stage_s: float = 5.0
    p99_limit_ms: float = 50.0  # throughput: a stage is sustained only with p99 below this
    probe_topic: str = "ocpp/#"
    raw_frames: bool = False  # throughput against the baseline relay (raw OCPP frames on relay/#)
    progress_every_s: float = 10.0


Restart = Callable[[], Awaitable[None]]
CpuMeter = Callable[[], float]  # CPU seconds used so far by some party (the adapter, the broker, the machine)


class MemoryWatch:
    """RSS samples of the adapter's process tree, when its pid is known."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.began = time.monotonic()
        self.samples: list[tuple[float, int, int]] = []  # (seconds, KiB, chargers connected)

    def sample(self, connected: int) -> None:
        if self.pid is not None:
            self.samples.append((round(time.monotonic() - self.began, 1), tree_rss_kb(self.pid), connected))

    def summary(self) -> dict[str, Any] | None:
        if len(self.samples) < 2:
            return None
        (_, idle, _), (_, loaded, connected) = self.samples[0], self.samples[-1]
        # Growth over the second half of the time every charger was connected: after the first minutes'
        # settling, a steady climb there is what a leak looks like.
        plateau = [s for s in self.samples if s[2] == connected]
        settled = plateau[len(plateau) // 2:]
        growth = None
        if len(settled) >= 2 and settled[-1][0] > settled[0][0]:
            growth = round((settled[-1][1] - settled[0][1]) / ((settled[-1][0] - settled[0][0]) / 60), 1)
        return {
            "pid": self.pid,
            "idle_kb": idle,
            "loaded_kb": loaded,
            "max_kb": max(s[1] for s in self.samples),
            "connected": connected,
            "per_charger_kb": round((loaded - idle) / connected, 2) if connected else None,
            "growth_kb_per_min_settled": growth,
            "samples": self.samples if len(self.samples) > 2 else None,
        }


@dataclass
class Run:
    """A live run, as a scenario body sees it."""

    opts: RunOptions
    behaviour: Behaviour
    fleet: ProcessFleet
    specs: list[ChargerSpec]
    started: float
    restart: Restart | None
    memory: MemoryWatch
    meters: dict[str, CpuMeter]

    def remaining(self) -> float:
        return max(0.0, self.started + self.opts.duration - time.time())

    async def all_accepted(self) -> bool:
        return await self.fleet.wait_for(lambda t: t.accepted >= len(self.specs), self.remaining())


async def _steady(run: Run) -> dict[str, Any]:
    await asyncio.sleep(run.remaining())
    return {}


async def _soak(run: Run) -> dict[str, Any]:
    every = max(5.0, run.opts.duration / 60)
    while run.remaining() > every:
        await asyncio.sleep(every)
        run.memory.sample(run.fleet.totals().connected)
    await asyncio.sleep(run.remaining())  # the last sample is taken as the run ends
    return {}


async def _boot_storm(run: Run) -> dict[str, Any]:
    everyone = await run.all_accepted()
    t = run.fleet.totals()
    return {"boot_storm": {
        "all_accepted": everyone,
        "accepted": t.accepted,
        "time_to_all_accepted_s": round(t.last_first_accept - t.started_at, 3) if everyone else None,
    }}


async def _reconnect_storm(run: Run) -> dict[str, Any]:
    if not await run.all_accepted():
        return {"reconnect_storm": {"error": "not every charger was accepted before the storm"}}
    await asyncio.sleep(min(5.0, run.remaining() / 4))  # some steady traffic first
    storm_at = time.time()
    run.fleet.broadcast("storm", storm_at)
    if run.restart is not None:
        mode = "adapter restarted"
        await run.restart()
    else:
        mode = "all sockets dropped at once"
        run.fleet.broadcast("drop")
    restart_s = time.time() - storm_at
    everyone = await run.fleet.wait_for(lambda t: t.accepted_after_storm >= len(run.specs),
                                        max(run.remaining(), 60.0))
    t = run.fleet.totals()
    return {"reconnect_storm": {
        "mode": mode,
        "restart_s": round(restart_s, 3),
        "all_reconnected": everyone,
        "reconnected": t.accepted_after_storm,
        "time_to_all_reconnected_s": round(t.last_storm_accept - storm_at, 3) if everyone else None,
        "storm_disconnects": t.storm_disconnects,
    }}


class _CpuWindow:
    """Cores each party used between `__init__` and `cores()`: which one ran out during a stage."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.began = time.monotonic()
        self.meters = {name: meter() for name, meter in run.meters.items()}
        self.workers = run.fleet.worker_cpu()

    def cores(self) -> dict[str, float]:
        elapsed = max(1e-9, time.monotonic() - self.began)
        used = {name: (meter() - self.meters[name]) / elapsed for name, meter in self.run.meters.items()}
        workers = [(now - before) / elapsed for now, before in zip(self.run.fleet.worker_cpu(), self.workers,
                                                                    strict=True)]
        used["simulator_workers"] = sum(workers)
        used["busiest_simulator_worker"] = max(workers)
        return {name: round(value, 2) for name, value in used.items()}


def next_rate(results: list[dict[str, Any]], opts: RunOptions) -> float | None:
    """The next stage's offered rate, or None when the ramp is done: grow by ``rate_step`` until a stage is not
    sustained, then bisect between the best sustained and the lowest failed rate ``refine_stages`` times."""
    if not results:
        return opts.start_rate
    offered = [(float(r["offered_msgs_per_s"]), bool(r["sustained"])) for r in results]
    failed = [rate for rate, ok in offered if not ok]
    if not failed:
        return offered[-1][0] * opts.rate_step
    sustained = [rate for rate, ok in offered if ok]
    ramp = next(i for i, (_, ok) in enumerate(offered, 1) if not ok)
    if not sustained or len(results) >= ramp + opts.refine_stages:
        return None
    return (max(sustained) + min(failed)) / 2


async def _throughput(run: Run) -> dict[str, Any]:
    """Offer ever more meter values per second until a stage is not sustained, narrow the gap between the
    last sustained and that rate by bisection (``refine_stages``), then report the best."""
    opts = run.opts
    assert opts.mqtt_url is not None and run.behaviour.marker_epoch is not None
    probe = LatencyProbe(run.behaviour.marker_epoch, raw_frames=opts.raw_frames)
    await probe.start(opts.mqtt_url, opts.probe_topic)
    sessions = sum(s.connectors for s in run.specs)
    results: list[dict[str, Any]] = []
    try:
        await run.all_accepted()
        await asyncio.sleep(1.0)  # every session starts right after its boot
        rate = next_rate(results, opts)
        while rate is not None and len(results) < opts.stages and run.remaining() > opts.stage_s + DRAIN_S:
            start = time.time() + 0.2
            timed = probe.mark(start)
            run.fleet.broadcast("plan", [(start, sessions / rate)])
            await asyncio.sleep(start + 1.0 - time.time())  # worker snapshots lag by up to a second
            window = _CpuWindow(run)
            await asyncio.sleep(start + opts.stage_s - time.time())
            cpu = window.cores()
            probe.mark(time.time())  # the quiet drain is timed apart
            run.fleet.broadcast("plan", [(time.time(), 1e9)])
            await asyncio.sleep(DRAIN_S)
            latency, delivered = timed.summary(), timed.count / opts.stage_s
            sustained = delivered >= 0.95 * rate and (latency["p99"] or math.inf) <= opts.p99_limit_ms
            results.append({"offered_msgs_per_s": round(rate), "delivered_msgs_per_s": round(delivered, 1),
                            "latency_ms": latency, "sustained": sustained, "cpu_cores": cpu})
            rate = next_rate(results, opts)
    finally:
        await probe.close()
    best = max((r for r in results if r["sustained"]), key=lambda r: r["delivered_msgs_per_s"], default=None)
    peak = max(results, key=lambda r: r["delivered_msgs_per_s"], default=None)
    return {
        "throughput": {
            "latency_measured_at": "mqtt subscriber",
            "stage_s": opts.stage_s,
            "p99_limit_ms": opts.p99_limit_ms,
            "sustained_msgs_per_s": best["delivered_msgs_per_s"] if best else 0.0,
            "peak_msgs_per_s": peak["delivered_msgs_per_s"] if peak else 0.0,
            "saturated": any(not r["sustained"] for r in results),
            "stages": results,
            "probe_messages": probe.messages,
            "probe_unmarked": probe.unmarked,
        },
        "latency_ms": (best or peak or {}).get("latency_ms", Histogram().summary()),
    }


async def _commands(run: Run) -> dict[str, Any]:
    assert run.opts.mqtt_url is not None
    backend = Backend()
    await backend.start(run.opts.mqtt_url)
    try:
        await run.all_accepted()
        await asyncio.sleep(min(5.0, run.remaining() / 10))  # let the boot burst pass: measure steady state
        await backend.drive(run.specs, run.opts.command_rate,
                            max(1.0, run.remaining() - min(SETTLE_S, run.remaining() / 4)))
        await backend.settle(SETTLE_S)  # returns as soon as every request is answered
    finally:
        await backend.close()
    summary = backend.summary()
    return {"commands": summary, "latency_ms": summary["latency_ms"]}


def _throughput_behaviour(opts: RunOptions) -> Behaviour:
    """Every connector charges for the whole run; meter values only when the rate plan says so."""
    return replace(opts.behaviour, idle_mean_s=0.0, session_mean_s=1e9, fault_probability=0.0,
                   meter_interval_s=3600, marker_epoch=float(int(time.time())))


@dataclass(frozen=True)
class Scenario:
    body: Callable[[Run], Awaitable[dict[str, Any]]]
    connect_rate: float = 1000.0  # default chargers per second
    needs_mqtt: bool = False
    behaviour: Callable[[RunOptions], Behaviour] = lambda opts: opts.behaviour


SCENARIOS: dict[str, Scenario] = {
    "steady": Scenario(_steady),
    "soak": Scenario(_soak),
    "boot-storm": Scenario(_boot_storm, connect_rate=0.0),
    "reconnect-storm": Scenario(_reconnect_storm),
    "throughput": Scenario(_throughput, needs_mqtt=True, behaviour=_throughput_behaviour),
    "commands": Scenario(_commands, needs_mqtt=True),
}


def _addresses(opts: RunOptions) -> list[str]:
    """Loopback targets get extra 127.0.0.x source addresses when one address's ports would run out."""
    if opts.source_addresses:
        return opts.source_addresses
    host = urlsplit(opts.url).hostname or ""
    if host.startswith("127.") and opts.chargers > CHARGERS_PER_ADDRESS:
        return plan.source_addresses(str(math.ceil(opts.chargers / CHARGERS_PER_ADDRESS)))
    return []


def _result(opts: RunOptions, specs: list[ChargerSpec], processes: int, stats: Stats, last: Stats,
            ended: float, fleet: ProcessFleet) -> dict[str, Any]:
    elapsed = max(1e-9, ended - (stats.started_at or ended))
    full_at = fleet.all_connected_at
    return {
        "scenario": opts.scenario,
        "url": opts.url,
        "run_id": opts.run_id,
        "chargers": len(specs),
        "versions": {v: sum(1 for s in specs if s.version == v) for v in sorted({s.version for s in specs})},
        "connectors": sum(s.connectors for s in specs),
        "processes": processes,
        "source_addresses": sorted({s.source_address for s in specs if s.source_address}),
        "duration_s": round(elapsed, 2),
        "connected": last.connected,
        "max_connected": max(fleet.max_connected, last.connected),
        # How long every charger was connected at once, from the moment the last one came in.
        "all_connected_after_s": None if full_at is None else round(full_at - (stats.started_at or full_at), 1),
        "all_connected_for_s": None if full_at is None else round(ended - full_at, 1),
        "accepted": last.accepted,
        "disconnects": stats.disconnects,
        "reconnects": stats.reconnects,
        "errors": stats.error_count,
        "errors_by_kind": dict(sorted(stats.errors.items())),
        "worker_cpu_s": round(stats.cpu_s, 2),
        "messages_sent": stats.messages_sent,
        "messages_received": stats.messages_received,
        "calls": stats.calls,
        "calls_cut_at_stop": stats.calls_cut,
        "throughput_msgs_per_s": round(stats.messages_sent / elapsed, 1),
        "latency_ms": stats.latency.summary(),
        "call_latency_ms": stats.latency.summary(),
        "requests_answered": dict(sorted(stats.requests_answered.items())),
    }


async def run(opts: RunOptions, restart: Restart | None = None, stream: TextIO | None = None,
              meters: dict[str, CpuMeter] | None = None) -> dict[str, Any]:
    """Run one scenario; `meters` name CPU counters to read per throughput stage (besides the simulator's)."""
    scenario = SCENARIOS[opts.scenario]
    if scenario.needs_mqtt and not opts.mqtt_url:
        raise ValueError(f"the {opts.scenario} scenario needs --mqtt-url")
    specs = plan.fleet(opts.run_id, opts.chargers, opts.mix, opts.connectors, _addresses(opts))
    shares = plan.split(specs, opts.processes or math.ceil(opts.chargers / CHARGERS_PER_PROCESS))
    rate = scenario.connect_rate if opts.connect_rate is None else opts.connect_rate
    behaviour = scenario.behaviour(opts)
    fleet = ProcessFleet([WorkerJob(opts.url, share, behaviour, rate / len(shares), seed=index)
                          for index, share in enumerate(shares)])
    progress = Progress(opts.scenario, stream, opts.progress_every_s)
    fleet.listeners.append(progress.update)
    memory = MemoryWatch(opts.adapter_pid)
    memory.sample(0)
    started = time.time()
    await fleet.start()
    try:
        extra = await scenario.body(Run(opts, behaviour, fleet, specs, started, restart, memory, meters or {}))
        ended = time.time()
        last = fleet.totals()
        memory.sample(last.connected)
    finally:
        stats = await fleet.stop()
        progress.close()
    result = _result(opts, specs, len(shares), stats, last, ended, fleet) | extra
    if (watched := memory.summary()) is not None:
        result["adapter_memory"] = watched
    return result
