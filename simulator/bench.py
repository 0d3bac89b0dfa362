"""`python -m simulator bench`: the standard scenarios against a freshly started adapter, and the ceiling.

It starts Mosquitto (free port, anonymous on loopback, persistence off, limits raised) and
`python -m adapter serve --workers W`, runs boot-storm, a long steady hold, commands, throughput and a
reconnect storm that restarts the adapter, then the same throughput ramp against the no-parsing relay
(`baseline_relay.py`), and writes docs/benchmarks.md. CPU time of adapter, broker and simulator is
recorded per scenario, because on a small machine the three compete for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shlex
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from simulator import procs
from simulator.report import render
from simulator.scenarios import RunOptions, run

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
PARTS = ("boot-storm", "hold", "commands", "throughput", "reconnect-storm", "baseline")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", type=Path, help="also write every scenario's full result here")
    p.add_argument("--output", type=Path, default=DOC, help="the Markdown report (default docs/benchmarks.md)")
    p.add_argument("--chargers", type=int, default=20_000, help="chargers in the steady hold")
    p.add_argument("--duration", type=float, default=150.0,
                   help="seconds of the steady hold, the connect ramp included")
    p.add_argument("--connect-rate", type=float, default=500.0, help="hold: chargers connected per second")
    p.add_argument("--boot-storm", type=int, default=10_000, help="chargers booting at once")
    p.add_argument("--storm-chargers", type=int, default=5_000, help="chargers in the reconnect storm")
    p.add_argument("--command-chargers", type=int, default=1_000)
    p.add_argument("--command-rate", type=float, default=100.0)
    p.add_argument("--command-duration", type=float, default=30.0)
    p.add_argument("--throughput-chargers", type=int, default=2_000)
    p.add_argument("--start-rate", type=float, default=1_000.0, help="throughput: first stage msg/s")
    p.add_argument("--rate-step", type=float, default=1.6)
    p.add_argument("--stages", type=int, default=12, help="throughput: at most this many stages")
    p.add_argument("--refine-stages", type=int, default=3,
                   help="throughput: stages bisecting between the last sustained and the first failed rate")
    p.add_argument("--stage-seconds", type=float, default=20.0,
                   help="throughput: seconds per stage; long enough that the adapter's periodic work (audit commits,"
                        " WAL checkpoints) lands in each stage many times: 6 s stages passed 5,300 msg/s on one"
                        " process where 40 s runs at 5,000 missed p99 50 ms")
    p.add_argument("--workers", type=int, default=0,
                   help="adapter (and relay) worker processes (default: one per core, or one per 9,000 held "
                        "chargers if that is more)")
    p.add_argument("--processes", type=int, default=0, help="simulator processes (default: 1 per 10,000)")
    p.add_argument("--adapter-args", default="--mqtt-mode shared --local-shadow off",
                   help="more `python -m adapter serve` options (default: %(default)s: in AWS, IoT Core serves the "
                        "device shadows, and the local stand-in cost the adapter process 7%% more CPU here; the store "
                        "is a fresh SQLite file unless --store-url is given)")
    p.add_argument("--hold-adapter-args", default="",
                   help="options added for the hold only, e.g. \"--mqtt-mode per-charger\" to hold in one mode and"
                        " measure throughput in another (the adapter restarts with them for the hold)")
    p.add_argument("--workdir", type=Path, help="for the adapter's store and the service logs (default: a new "
                                                 "temporary directory)")
    p.add_argument("--render", type=Path, help="only rewrite the report from a JSON file an earlier --json wrote")
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")


class Bench:
    """One bench run: the broker, the service under test, and the results gathered so far."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # One worker per core, more when a worker would hold more sockets than its 20,000 files allow.
        self.workers = args.workers or max(os.cpu_count() or 1, math.ceil(args.chargers / 9_000))
        self.dir = args.workdir or Path(tempfile.mkdtemp(prefix="sim-bench-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.adapter_args = shlex.split(args.adapter_args)
        if "--store-url" not in self.adapter_args:
            self.adapter_args += ["--store-url", f"sqlite:///{self.dir / 'adapter.db'}"]
        self.broker = procs.start_broker()
        self.service: procs.Service | None = None
        self.results: dict[str, dict[str, Any]] = {}
        self.cpu: dict[str, dict[str, float]] = {}

    def adapter(self, extra: list[str]) -> procs.Service:
        """The adapter under test; ``extra`` options come after the run's own, so they win."""
        return procs.adapter_service(self.broker.url, self.workers, self.dir / "adapter.log",
                                     self.adapter_args + extra)

    def options(self, **fields: Any) -> RunOptions:
        assert self.service is not None
        return RunOptions(url=self.service.url, mqtt_url=self.broker.url,
                          **{"processes": self.args.processes, "progress_every_s": 10.0, **fields})

    def service_pid(self) -> int:
        assert self.service is not None and self.service.process is not None
        return self.service.process.pid

    async def serve(self, service: procs.Service) -> None:
        if self.service is not None:
            await asyncio.to_thread(self.service.stop)
        self.service = service
        await asyncio.to_thread(service.start)

    async def restart(self) -> None:
        assert self.service is not None
        await asyncio.to_thread(self.service.restart)

    async def scenario(self, name: str, opts: RunOptions, restart: Callable[[], Awaitable[None]] | None = None,
                       ) -> dict[str, Any]:
        """Run one scenario, with the CPU each party used while it ran."""
        service = self.service
        assert service is not None
        parties: dict[str, Callable[[], float]] = {
            "service": service.cpu_s, "broker": lambda: procs.cpu_seconds(self.broker.process.pid),
            "simulator": time.process_time,  # this process; its workers report their own
            "machine": procs.machine_busy_s}
        before = {k: used() for k, used in parties.items()}
        began = time.monotonic()
        meters = {k: parties[k] for k in ("service", "broker", "machine")}
        result = await run(opts, restart=restart, meters=meters)
        wall = time.monotonic() - began
        used = {k: used() - before[k] for k, used in parties.items()}
        used["simulator"] += result["worker_cpu_s"]
        result["service_command"] = service.command[1:]
        self.cpu[name] = {k: round(seconds / wall, 2) for k, seconds in used.items()}
        print(render(result), flush=True)
        self.results[name] = result
        return result

    def close(self) -> None:
        if self.service is not None:
            self.service.stop()
        procs.stop(self.broker.process)


async def _run_parts(bench: Bench) -> None:
    args = bench.args
    parts = set(args.only.split(","))
    # One simulator worker per core here, so that generating the load is not what saturates first.
    throughput = {"scenario": "throughput", "chargers": args.throughput_chargers, "connectors": {"1": 1.0},
                  "processes": max(args.processes, os.cpu_count() or 1),
                  "probe_topic": "ocpp/+/meter_values",
                  "start_rate": args.start_rate, "rate_step": args.rate_step, "stages": args.stages,
                  "refine_stages": args.refine_stages,
                  "stage_s": args.stage_seconds,
                  "duration": args.throughput_chargers / 500 + 10 + args.stages * (args.stage_seconds + 2)}
    hold_args = shlex.split(args.hold_adapter_args)
    await bench.serve(bench.adapter([]))
    if "boot-storm" in parts:
        await bench.scenario("boot-storm", bench.options(scenario="boot-storm", chargers=args.boot_storm,
                                                         duration=120.0))
        await bench.restart()
    if "hold" in parts:
        if hold_args:
            await bench.serve(bench.adapter(hold_args))
        await bench.scenario("hold", bench.options(scenario="soak", chargers=args.chargers,
                                                   duration=args.duration, connect_rate=args.connect_rate,
                                                   adapter_pid=bench.service_pid()))
        if hold_args:
            await bench.serve(bench.adapter([]))
        else:
            await bench.restart()
    if "commands" in parts:
        await bench.scenario("commands", bench.options(scenario="commands", chargers=args.command_chargers,
                                                       command_rate=args.command_rate,
                                                       duration=args.command_duration))
    if "throughput" in parts:
        await bench.scenario("throughput", bench.options(**throughput))
    if "reconnect-storm" in parts:
        await bench.scenario("reconnect-storm", bench.options(scenario="reconnect-storm",
                                                              chargers=args.storm_chargers, duration=120.0),
                             restart=bench.restart)
    if "baseline" in parts:
        await bench.serve(procs.relay_service(bench.broker.url, bench.workers, bench.dir / "relay.log"))
        opts = bench.options(**throughput)
        await bench.scenario("baseline", replace(opts, raw_frames=True, probe_topic="relay/#"))


@dataclass
class Report:
    """Everything docs/benchmarks.md is written from; saved by --json, re-rendered by --render."""

    settings: dict[str, Any]
    adapter_workers: int
    adapter_args: list[str]
    results: dict[str, dict[str, Any]]
    cpu_cores_used: dict[str, dict[str, float]]
    finished_at: str
    core_reference_ms: float | None = None  # absent from reports written before it was measured


def core_reference_ms() -> float:
    """How fast one core of this host runs plain Python (best of five), so figures from hosts of different
    speeds can be compared: hosts of the same kind here have differed threefold."""
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        sum(range(1_000_000))
        timings.append(time.perf_counter() - started)
    return round(min(timings) * 1000, 1)


def main(args: argparse.Namespace) -> int:
    if args.render is not None:
        report = Report(**json.loads(args.render.read_text()))
    else:
        # SIGTERM unwinds like Ctrl-C, so the broker and the adapter it started stop too instead of outliving it
        # (a forgotten adapter reconnecting to a dead broker skewed later runs).
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        reference = core_reference_ms()  # before the bench loads the machine
        bench = Bench(args)
        try:
            uvloop.run(_run_parts(bench))
        finally:
            bench.close()
        report = Report({k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, bench.workers,
                        bench.adapter_args, bench.results, bench.cpu, f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
                        reference)
        print(f"service logs in {bench.dir}")
        if args.json is not None:
            args.json.write_text(json.dumps(asdict(report), indent=2) + "\n")
    args.output.write_text(markdown(report))
    print(f"wrote {args.output}")
    return 0


# -- the report -------------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _latency(latency: dict[str, Any] | None) -> str:
    if not latency or not latency.get("count"):
        return "n/a"
    return f"p50 {latency['p50']:.1f} / p99 {latency['p99']:.1f} ms"


@dataclass(frozen=True)
class Targets:
    held: str
    memory: str
    throughput: str


# The fleet's targets (issue 4), and those one adapter process must meet on this machine (issue 2).
FLEET = Targets("20,000 for 10 min, 0 unexpected disconnects", "≤ 48 KB", "≥ 10,000 msg/s, p99 < 50 ms")
ONE_PROCESS = Targets("5,000 in per-charger mode, 0 unexpected disconnects", "none set",
                      "≥ 5,000 msg/s, p99 < 50 ms")


def _headlines(results: dict[str, dict[str, Any]], targets: Targets) -> list[tuple[str, str, str]]:
    rows = []
    if hold := results.get("hold"):
        memory = hold.get("adapter_memory") or {}
        held = (f"all {hold['chargers']:,} connected after {hold['all_connected_after_s']:.0f} s and held together"
                f" for {hold['all_connected_for_s'] / 60:.1f} min" if hold["all_connected_for_s"] is not None
                else f"at most {hold['max_connected']:,} of {hold['chargers']:,} connected at once")
        rows.append(("Concurrent chargers held by one adapter", targets.held,
                     f"{held}; {hold['disconnects']} unexpected disconnects"))
        rows.append(("Memory per connected charger", targets.memory,
                     f"{_num(memory.get('per_charger_kb'))} KiB (adapter RSS delta, all workers, "
                     f"{memory.get('idle_kb', 0) // 1024:,} → {memory.get('loaded_kb', 0) // 1024:,} MiB;"
                     f" then {_num(memory.get('growth_kb_per_min_settled'))} KiB/min over the second half of the"
                     " hold)"))
    if tp := results.get("throughput"):
        t = tp["throughput"]
        rows.append(("End-to-end throughput (charger → MQTT subscriber)", targets.throughput,
                     f"{t['sustained_msgs_per_s']:,.0f} msg/s sustained, {_latency(tp['latency_ms'])};"
                     f" peak {t['peak_msgs_per_s']:,.0f} msg/s"))
    if cmd := results.get("commands"):
        c = cmd["commands"]
        rows.append(("Back-end command round trip (MQTT → charger → MQTT)", "p99 < 20 ms added",
                     f"{_latency(c['latency_ms'])} ({c['responses']:,} commands, {c['outcomes']})"))
    if boot := results.get("boot-storm"):
        b = boot["boot_storm"]
        outcome = (f"all {b['accepted']:,} accepted in {b['time_to_all_accepted_s']:.1f} s" if b["all_accepted"]
                   else f"{b['accepted']:,} of {boot['chargers']:,} accepted")
        rows.append(("Boot storm", "10,000 chargers all accepted within 30 s", outcome))
    if (storm := results.get("reconnect-storm")) and "error" not in storm["reconnect_storm"]:
        s = storm["reconnect_storm"]
        outcome = (f"all {s['reconnected']:,} back in {s['time_to_all_reconnected_s']:.1f} s"
                   if s["all_reconnected"] else f"{s['reconnected']:,} of {storm['chargers']:,} back")
        rows.append(("Reconnect storm (adapter restarted under load)", "n/a",
                     f"{outcome} (restart took {s['restart_s']:.1f} s)"))
    if tp and (base := results.get("baseline")):
        ceiling = base["throughput"]["sustained_msgs_per_s"]
        ratio = tp["throughput"]["sustained_msgs_per_s"] / ceiling if ceiling else None
        rows.append(("Throughput vs. a no-parsing relay", "≥ 0.5",
                     f"{_num(ratio, 2)} ({tp['throughput']['sustained_msgs_per_s']:,.0f} vs "
                     f"{ceiling:,.0f} msg/s sustained)"))
        if common := _common_sustained(tp, base):
            ours, relay = common
            rows.append((f"Service CPU per message at {ours['offered_msgs_per_s']:,} msg/s (the highest rate both"
                         " sustained)", "none set",
                         f"{_num(_cpu_per_message(ours), 0)} µs (relay {_num(_cpu_per_message(relay), 0)} µs)"))
    return rows


def _cpu_per_message(stage: dict[str, Any]) -> float | None:
    """Microseconds of the service's CPU per delivered message: unlike msg/s, it hardly depends on what else
    runs on the machine, so runs on different days (and hosts of different speed) compare by it."""
    delivered = stage["delivered_msgs_per_s"]
    return stage["cpu_cores"]["service"] * 1e6 / delivered if delivered else None


def _common_sustained(*results: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Each result's stage at the highest offered rate every one of them sustained: CPU per message falls as
    the rate rises (more work per wakeup), so only stages at the same rate compare."""
    sustained = [{s["offered_msgs_per_s"]: s for s in r["throughput"]["stages"] if s["sustained"]} for r in results]
    rates = set.intersection(*(set(stages) for stages in sustained))
    return [stages[max(rates)] for stages in sustained] if rates else None


def _stage_table(result: dict[str, Any]) -> list[str]:
    lines = ["| offered msg/s | delivered msg/s | p50 ms | p95 ms | p99 ms | sustained |"
             " cores: service | broker | simulator (busiest worker) | machine | service CPU µs/msg |",
             "|---:|---:|---:|---:|---:|:-:|---:|---:|---:|---:|---:|"]
    for stage in result["throughput"]["stages"]:
        latency, cpu = stage["latency_ms"], stage["cpu_cores"]
        lines.append(f"| {stage['offered_msgs_per_s']:,} | {stage['delivered_msgs_per_s']:,.0f} | "
                     f"{_num(latency['p50'], 2)} | {_num(latency['p95'], 2)} | {_num(latency['p99'], 2)} | "
                     f"{'yes' if stage['sustained'] else 'no'} | {cpu['service']:.2f} | {cpu['broker']:.2f} | "
                     f"{cpu['simulator_workers']:.2f} ({cpu['busiest_simulator_worker']:.2f}) | "
                     f"{cpu['machine']:.2f} | {_num(_cpu_per_message(stage), 0)} |")
    return lines


def _stage_limit(name: str, stage: dict[str, Any], cores: int) -> str:
    """Which resource the first stage that was not sustained ran out of, as far as CPU shows it."""
    cpu = stage["cpu_cores"]
    where = (f"at {stage['offered_msgs_per_s']:,} msg/s offered: machine {cpu['machine']:.2f} of {cores} cores"
             f" busy, service {cpu['service']:.2f}, busiest simulator worker {cpu['busiest_simulator_worker']:.2f}")
    if cpu["machine"] >= 0.85 * cores:
        return f"- **{name}**: the machine's cores ran out ({where})."
    if cpu["busiest_simulator_worker"] >= 0.9:
        return (f"- **{name}**: a simulator worker process ran out of its one core ({where}); the figure is"
                " a floor set by the load generator.")
    return (f"- **{name}**: the service stopped keeping up with CPU to spare ({where}): its limit is inside it"
            " (serialized work, waits for acknowledgements), not the machine's cores.")


def _limits(report: Report) -> list[str]:
    """Observations the numbers support, so a reader knows which resource a figure ran into."""
    cores = os.cpu_count() or 1
    notes = []
    for name, used in report.cpu_cores_used.items():
        if name in ("throughput", "baseline"):
            failed = [s for s in report.results[name]["throughput"]["stages"] if not s["sustained"]]
            if failed:
                notes.append(_stage_limit(name, min(failed, key=lambda s: s["offered_msgs_per_s"]), cores))
        elif used["machine"] >= 0.85 * cores:
            notes.append(f"- **{name}**: the machine was CPU-bound ({used['machine']:.2f} of {cores} cores busy on"
                         f" average: service {used['service']:.2f}, broker {used['broker']:.2f},"
                         f" simulator {used['simulator']:.2f}).")
    hold = report.results.get("hold")
    if hold and hold["max_connected"] < hold["chargers"]:
        notes.append(f"- **hold**: {hold['chargers'] - hold['max_connected']:,} chargers never connected; errors:"
                     f" {hold['errors_by_kind']}. A process may hold 20,000 open files here, and one source"
                     " address has 28,232 ephemeral ports towards one destination.")
    commands = report.results.get("commands")
    p50 = commands["commands"]["latency_ms"]["p50"] if commands else None
    if p50 is not None and 30.0 <= p50 <= 50.0:
        notes.append("- **commands**: a round trip near 40 ms is the signature of Nagle's algorithm meeting the"
                     " broker's delayed ACK on the service's MQTT connection: the response is published just"
                     " after the request's PUBACK went out. The adapter sets TCP_NODELAY on its broker sockets"
                     " itself (awscrt has no option for it); its log says when it could not. The simulator's"
                     " own MQTT client sets it too, so this delay is not the instrument's.")
    for name in ("throughput", "baseline"):
        if (result := report.results.get(name)) and not result["throughput"]["saturated"]:
            notes.append(f"- **{name}**: the ramp ended before a stage failed; the figure is a lower bound.")
    notes.append("- Every party shares the same cores: a figure for the adapter includes the cost of generating"
                 " the load and of the broker; see the CPU table.")
    return notes


def markdown(report: Report) -> str:
    results, args = report.results, report.settings
    one_process = report.adapter_workers == 1
    cores = os.cpu_count()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        "# Benchmarks" + (": one adapter process" if one_process else ""),
        "",
        f"Written by `python -m simulator bench` on {report.finished_at}. Machine: {cores} cores,"
        f" {memory_gib:.0f} GiB, {platform.system()} {platform.release()}, Python {platform.python_version()}"
        + (f"; one core runs `sum(range(10**6))` in {ref} ms (compare hosts by it)"
           if (ref := report.core_reference_ms) is not None else "") + "."
        f" The adapter ran with {report.adapter_workers} worker processes and `{' '.join(report.adapter_args)}`"
        + (f" (for the hold, `{hold}` added)" if (hold := args.get("hold_adapter_args")) else "") + ";"
        " Mosquitto, the adapter and the simulator"
        " (and whatever else runs on the machine) share the same cores, so every figure is a floor for what"
        " the adapter does on a machine of its own.",
        *([] if one_process else ["", "One adapter process against its own targets (5,000 msg/s, 5,000 chargers"
                                      " held): [benchmarks-one-process.md](benchmarks-one-process.md)."]),
        "",
        "## Headline figures",
        "",
        "| measure | target | measured |",
        "|---|---|---|",
        *(f"| {name} | {target} | {measured} |" for name, target, measured in _headlines(
            results, ONE_PROCESS if one_process else FLEET)),
        "",
        "## CPU used per scenario (cores, averaged over the scenario)",
        "",
        "The service is the adapter (all its workers), or the relay in the baseline row; the machine column"
        " counts every process on the machine, including other work that happened to run.",
        "",
        "| scenario | service | broker | simulator | machine |",
        "|---|---:|---:|---:|---:|",
        *(f"| {name} | {c['service']:.2f} | {c['broker']:.2f} | {c['simulator']:.2f} | {c['machine']:.2f} |"
          for name, c in report.cpu_cores_used.items()),
        "",
    ]
    for name in ("throughput", "baseline"):
        if name in results:
            title = "adapter" if name == "throughput" else "no-parsing relay (the ceiling)"
            lines += [f"## End-to-end throughput ramp: {title}", "",
                      f"{results[name]['chargers']:,} chargers, stages of {results[name]['throughput']['stage_s']} s;"
                      " latency is from the charger sending a MeterValues/TransactionEvent to an MQTT subscriber"
                      " receiving the event (send time carried in the message).", "",
                      *_stage_table(results[name]), ""]
    lines += ["## What limits these figures", "", *_limits(report), "",
              "## Every scenario", "", "```", *(render(r) for r in results.values()), "```", "",
              f"This run: hold {args['chargers']:,} chargers for {args['duration']:.0f} s, boot storm"
              f" {args['boot_storm']:,}, throughput with {args['throughput_chargers']:,} chargers. Rerun with"
              " `python -m simulator bench` (`--help` lists the sizes); `--render bench.json` rewrites this page"
              " from a saved run.", ""]
    return "\n".join(lines)
