"""The human-readable summary printed at the end of a run."""

from __future__ import annotations

from typing import Any


def ms(latency: dict[str, Any] | None) -> str:
    if not latency or not latency.get("count"):
        return "no samples"
    return f"p50 {latency['p50']:.2f} / p95 {latency['p95']:.2f} / p99 {latency['p99']:.2f} ms (n={latency['count']:,})"


def render(result: dict[str, Any]) -> str:
    versions = ", ".join(f"{v}: {n}" for v, n in result["versions"].items())
    lines = [
        f"{result['scenario']}: {result['chargers']:,} chargers ({versions}), {result['processes']} process(es),"
        f" {result['duration_s']:.1f} s against {result['url']}",
        f"  connected {result['connected']:,} (max {result['max_connected']:,}), accepted {result['accepted']:,},"
        f" unexpected disconnects {result['disconnects']}, reconnects {result['reconnects']}"
        + ("" if result["all_connected_for_s"] is None else
           f"; all connected after {result['all_connected_after_s']} s, for {result['all_connected_for_s']} s"),
        f"  messages sent {result['messages_sent']:,} ({result['throughput_msgs_per_s']:,.1f}/s),"
        f" errors {result['errors']}" + (f" {result['errors_by_kind']}" if result["errors"] else ""),
        f"  CALL -> CALLRESULT {ms(result['call_latency_ms'])}",
    ]
    if boot := result.get("boot_storm"):
        lines.append(f"  boot storm: {boot['accepted']:,} accepted" + (
            f", all within {boot['time_to_all_accepted_s']:.2f} s" if boot["all_accepted"] else ", not all"))
    if storm := result.get("reconnect_storm"):
        if "error" in storm:
            lines.append(f"  reconnect storm: {storm['error']}")
        else:
            outcome = (f"all reconnected within {storm['time_to_all_reconnected_s']:.2f} s"
                       if storm["all_reconnected"] else f"only {storm['reconnected']:,} reconnected")
            lines.append(f"  reconnect storm ({storm['mode']}): {outcome}")
    if tp := result.get("throughput"):
        lines.append(f"  end to end (at the MQTT subscriber), stages of {tp['stage_s']} s:")
        for stage in tp["stages"]:
            note = "" if stage["sustained"] else "  (not sustained)"
            lines.append(f"    offered {stage['offered_msgs_per_s']:>8,}/s"
                         f"  delivered {stage['delivered_msgs_per_s']:>10,.1f}/s  {ms(stage['latency_ms'])}{note}")
        lines.append(f"  sustained {tp['sustained_msgs_per_s']:,.1f} msg/s with p99 <= {tp['p99_limit_ms']} ms;"
                     f" peak {tp['peak_msgs_per_s']:,.1f} msg/s"
                     + ("" if tp["saturated"] else " (the ramp ended before saturating)"))
    if commands := result.get("commands"):
        lines.append(f"  commands: {commands['responses']:,}/{commands['requests']:,} answered {commands['outcomes']},"
                     f" round trip {ms(commands['latency_ms'])}")
    if memory := result.get("adapter_memory"):
        lines.append(f"  adapter memory: {memory['idle_kb']:,} KiB idle -> {memory['loaded_kb']:,} KiB with"
                     f" {memory['connected']:,} chargers = {memory['per_charger_kb']} KiB per charger")
    return "\n".join(lines)
