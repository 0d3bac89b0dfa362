"""Every scenario against the real adapter (in-process) and a real Mosquitto, at small N."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from simulator.scenarios import RunOptions, run
from tests.conftest import Broker
from tests.simulator.helpers import FAST

REQUIRED = ("chargers", "connected", "errors", "messages_sent", "throughput_msgs_per_s", "latency_ms")


def url_of(adapter: Any) -> str:
    return f"ws://127.0.0.1:{adapter.port}/ocpp"


def options(adapter: Any, broker: Broker, scenario: str, chargers: int, duration: float,
            **fields: Any) -> RunOptions:
    return RunOptions(url=url_of(adapter), mqtt_url=broker.url, scenario=scenario, chargers=chargers,
                      duration=duration, behaviour=replace(FAST, idle_mean_s=2.0, session_mean_s=3.0),
                      connect_rate=0.0, progress_every_s=1.0, **fields)


def assert_clean(result: dict[str, Any], chargers: int) -> None:
    for key in REQUIRED:
        assert key in result
    assert set(result["latency_ms"]) >= {"p50", "p95", "p99"}
    assert result["chargers"] == chargers
    assert result["max_connected"] == chargers
    assert result["errors"] == 0, result["errors_by_kind"]
    assert result["disconnects"] == 0


async def test_steady(adapter_factory: Any, mosquitto: Broker) -> None:
    adapter = await adapter_factory(mqtt_mode="shared")
    result = await run(options(adapter, mosquitto, "steady", 20, 4.0, mix={"1.6": 1, "2.0.1": 1, "2.1": 1}))
    assert_clean(result, 20)
    assert result["connected"] == 20
    assert result["all_connected_for_s"] is not None and result["all_connected_for_s"] >= 0
    assert result["versions"] == {"1.6": 7, "2.0.1": 7, "2.1": 6}
    assert result["calls"] == result["messages_sent"]  # nothing but the chargers' own CALLs
    # every CALL answered and timed, but for one per charger at most that the stop cut off
    assert result["calls_cut_at_stop"] <= 20
    assert result["latency_ms"]["count"] == result["calls"] - result["calls_cut_at_stop"]


async def test_boot_storm(adapter_factory: Any, mosquitto: Broker) -> None:
    adapter = await adapter_factory(mqtt_mode="shared")
    result = await run(options(adapter, mosquitto, "boot-storm", 40, 15.0))
    assert_clean(result, 40)
    assert result["boot_storm"]["all_accepted"]
    assert result["boot_storm"]["time_to_all_accepted_s"] > 0


async def test_reconnect_storm_drops_every_socket(adapter_factory: Any, mosquitto: Broker) -> None:
    adapter = await adapter_factory(mqtt_mode="shared")
    result = await run(options(adapter, mosquitto, "reconnect-storm", 20, 8.0))
    assert_clean(result, 20)
    storm = result["reconnect_storm"]
    assert storm["all_reconnected"] and storm["storm_disconnects"] == 20
    assert result["reconnects"] == 20


async def test_reconnect_storm_restarting_the_adapter(adapter_factory: Any, mosquitto: Broker) -> None:
    adapter = await adapter_factory(mqtt_mode="shared")
    port = adapter.port

    async def restart() -> None:
        await adapter.shutdown()
        await adapter_factory(mqtt_mode="shared", port=port)

    result = await run(options(adapter, mosquitto, "reconnect-storm", 10, 8.0), restart=restart)
    storm = result["reconnect_storm"]
    assert storm["mode"] == "adapter restarted"
    assert storm["all_reconnected"] and storm["reconnected"] == 10
    assert result["disconnects"] == 0  # the restart's disconnects are the storm's, not unexpected


async def test_throughput_is_timed_end_to_end_at_mqtt(adapter_factory: Any, mosquitto: Broker) -> None:
    adapter = await adapter_factory(mqtt_mode="shared")
    result = await run(options(adapter, mosquitto, "throughput", 30, 12.0, start_rate=20.0, rate_step=2.0,
                               stages=2, stage_s=2.0, p99_limit_ms=60_000.0))
    assert_clean(result, 30)
    throughput = result["throughput"]
    stages = throughput["stages"]
    assert [s["offered_msgs_per_s"] for s in stages] == [20, 40][:len(stages)]
    assert all(s["latency_ms"]["count"] > 0 for s in stages)
    assert throughput["peak_msgs_per_s"] > 0
    assert result["latency_ms"]["count"] > 0


async def test_commands_round_trip_through_mqtt(adapter_factory: Any, mosquitto: Broker) -> None:
    adapter = await adapter_factory(mqtt_mode="shared")
    result = await run(options(adapter, mosquitto, "commands", 10, 6.0, command_rate=20.0))
    assert_clean(result, 10)
    commands = result["commands"]
    assert commands["requests"] > 0 and commands["no_response"] == 0
    assert commands["outcomes"] == {"ok": commands["responses"]}
    assert result["latency_ms"] == commands["latency_ms"]
    assert sum(result["requests_answered"].values()) == commands["responses"]


async def test_soak_reports_the_adapters_memory(adapter_factory: Any, mosquitto: Broker) -> None:
    adapter = await adapter_factory(mqtt_mode="shared")
    result = await run(options(adapter, mosquitto, "soak", 10, 6.0, adapter_pid=os.getpid()))
    assert_clean(result, 10)
    memory = result["adapter_memory"]
    assert memory["pid"] == os.getpid() and memory["loaded_kb"] > 0
    assert len(memory["samples"]) >= 2


async def test_the_cli_runs_over_several_processes_and_addresses(adapter_factory: Any, mosquitto: Broker,
                                                                  tmp_path: Path) -> None:
    adapter = await adapter_factory(mqtt_mode="shared")
    out = tmp_path / "result.json"
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator", "run", "--url", url_of(adapter), "--chargers", "12", "--duration", "3",
        "--processes", "2", "--source-addresses", "127.0.0.1,127.0.0.2", "--mix", "1.6=50,2.0.1=40,2.1=10",
        "--connectors", "1=50,2=50", "--json", str(out), stdout=asyncio.subprocess.PIPE)
    stdout, _ = await cli.communicate()
    assert cli.returncode == 0
    assert b"steady: 12 chargers" in stdout
    result = json.loads(out.read_text())
    assert_clean(result, 12)
    assert result["processes"] == 2
    assert result["source_addresses"] == ["127.0.0.1", "127.0.0.2"]
