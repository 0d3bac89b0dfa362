"""Command line: `python -m simulator run ...` (one scenario) and `python -m simulator bench ...`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvloop

from simulator import bench, plan
from simulator.model import VERSIONS, Behaviour
from simulator.report import render
from simulator.scenarios import SCENARIOS, RunOptions, run


def _mix(text: str) -> dict[str, float]:
    try:
        return plan.parse_mix(text, VERSIONS)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _connectors(text: str) -> dict[str, float]:
    try:
        shares = plan.parse_mix(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not all(k.isdigit() and int(k) >= 1 for k in shares):
        raise argparse.ArgumentTypeError("connector counts are whole numbers >= 1, e.g. 1=30,2=70")
    return shares


def _addresses(text: str) -> list[str]:
    try:
        return plan.source_addresses(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    d = RunOptions(url="")
    b = Behaviour()
    p.add_argument("--url", required=True, help="the central system, e.g. ws://127.0.0.1:9000/ocpp")
    p.add_argument("--chargers", type=int, default=d.chargers)
    p.add_argument("--duration", type=float, default=d.duration, help="seconds (a time limit for storms)")
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default=d.scenario)
    p.add_argument("--json", type=Path, help="write the result here")
    p.add_argument("--mix", type=_mix, default=d.mix, help="OCPP versions, e.g. 1.6=50,2.0.1=40,2.1=10")
    p.add_argument("--connectors", type=_connectors, default=d.connectors,
                   help="connectors per charger, e.g. 1=30,2=70 or 2")
    p.add_argument("--processes", type=int, default=0, help="worker processes (default: 1 per 10,000)")
    p.add_argument("--source-addresses", type=_addresses, default=[],
                   help="127.0.0.x addresses to connect from: a list, or a count N for 127.0.0.1..N")
    p.add_argument("--connect-rate", type=float, help="chargers started per second (0: all at once)")
    p.add_argument("--run-id", default=d.run_id, help="charger ids are sim-{run-id}-{n}")
    p.add_argument("--mqtt-url", help="the broker the adapter publishes to (throughput, commands)")
    p.add_argument("--adapter-pid", type=int, help="report this process tree's memory")
    p.add_argument("--meter-interval", type=int, default=b.meter_interval_s, help="seconds between meter values")
    p.add_argument("--idle-mean", type=float, default=b.idle_mean_s, help="mean seconds between sessions")
    p.add_argument("--session-mean", type=float, default=b.session_mean_s, help="mean session seconds")
    p.add_argument("--fault-probability", type=float, default=b.fault_probability)
    p.add_argument("--call-timeout", type=float, default=b.call_timeout_s)
    p.add_argument("--ws-ping", type=float, help="WebSocket ping interval in seconds (default: off)")
    p.add_argument("--command-rate", type=float, default=d.command_rate, help="commands: requests per second")
    p.add_argument("--start-rate", type=float, default=d.start_rate, help="throughput: first stage msg/s")
    p.add_argument("--rate-step", type=float, default=d.rate_step, help="throughput: growth per stage")
    p.add_argument("--stages", type=int, default=d.stages, help="throughput: at most this many stages")
    p.add_argument("--refine-stages", type=int, default=d.refine_stages,
                   help="throughput: stages bisecting between the last sustained and the first failed rate")
    p.add_argument("--stage-seconds", type=float, default=d.stage_s, help="throughput: seconds per stage")
    p.add_argument("--p99-limit", type=float, default=d.p99_limit_ms, help="throughput: sustained p99, ms")
    p.add_argument("--probe-topic", default=d.probe_topic, help="throughput: MQTT topic filter to time")
    p.add_argument("--raw-frames", action="store_true",
                   help="throughput: the server is the baseline relay (raw frames on relay/#)")
    p.add_argument("--progress-every", type=float, default=d.progress_every_s,
                   help="seconds between progress lines when not on a terminal")


def _options(args: argparse.Namespace) -> RunOptions:
    behaviour = replace(Behaviour(), meter_interval_s=args.meter_interval, idle_mean_s=args.idle_mean,
                        session_mean_s=args.session_mean, fault_probability=args.fault_probability,
                        call_timeout_s=args.call_timeout, ws_ping_interval_s=args.ws_ping)
    return RunOptions(
        url=args.url.rstrip("/"), chargers=args.chargers, duration=args.duration, scenario=args.scenario,
        mix=args.mix, connectors=args.connectors, processes=args.processes,
        source_addresses=args.source_addresses, connect_rate=args.connect_rate, run_id=args.run_id,
        behaviour=behaviour, mqtt_url=args.mqtt_url, adapter_pid=args.adapter_pid,
        command_rate=args.command_rate, start_rate=args.start_rate, rate_step=args.rate_step,
        stages=args.stages, refine_stages=args.refine_stages, stage_s=args.stage_seconds,
        p99_limit_ms=args.p99_limit, probe_topic=args.probe_topic, raw_frames=args.raw_frames,
        progress_every_s=args.progress_every)


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(result, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run_arguments(commands.add_parser("run", help="run one scenario against a central system"))
    bench.add_arguments(commands.add_parser("bench", help="start a broker and the adapter, run the standard "
                                                          "scenarios and the baseline, write docs/benchmarks.md"))
    args = parser.parse_args(argv)
    if args.command == "bench":
        return bench.main(args)
    try:
        result = uvloop.run(run(_options(args)))
    except ValueError as error:
        parser.error(str(error))
    print(render(result))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
