"""The bench end to end at toy sizes: its own broker, the adapter as a subprocess, the relay, the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_the_bench_starts_everything_and_writes_its_report(tmp_path: Path) -> None:
    report, data = tmp_path / "benchmarks.md", tmp_path / "bench.json"
    subprocess.run([sys.executable, "-m", "simulator", "bench", "--only", "boot-storm,hold,baseline",
                    "--boot-storm", "20", "--chargers", "20", "--duration", "3", "--connect-rate", "100",
                    "--throughput-chargers", "20", "--start-rate", "20", "--stages", "2", "--stage-seconds", "1",
                    "--workers", "1", "--hold-adapter-args", "--mqtt-mode per-charger", "--output", str(report),
                    "--json", str(data), "--workdir", str(tmp_path)],
                   check=True, timeout=120, stdout=subprocess.DEVNULL)
    results = json.loads(data.read_text())["results"]
    assert set(results) == {"boot-storm", "hold", "baseline"}
    assert results["boot-storm"]["boot_storm"]["all_accepted"]
    assert results["hold"]["adapter_memory"]["connected"] == 20
    assert results["baseline"]["throughput"]["stages"]
    assert results["hold"]["service_command"][-2:] == ["--mqtt-mode", "per-charger"]
    assert "per-charger" not in results["boot-storm"]["service_command"]
    text = report.read_text()
    assert "| Boot storm | 10,000 chargers all accepted within 30 s | all 20 accepted in" in text
    assert "## End-to-end throughput ramp: no-parsing relay (the ceiling)" in text
    assert text.startswith("# Benchmarks: one adapter process\n")
    assert "(for the hold, `--mqtt-mode per-charger` added);" in text
    assert "benchmarks-one-process.md" not in text
    assert "| Concurrent chargers held by one adapter | 5,000 in per-charger mode, 0 unexpected" in text
    saved = json.loads(data.read_text())
    assert saved["core_reference_ms"] > 0
    assert f"one core runs `sum(range(10**6))` in {saved['core_reference_ms']} ms" in text
    del saved["core_reference_ms"]  # as in reports written before it was measured
    data.write_text(json.dumps({**saved, "adapter_workers": 2}))
    subprocess.run([sys.executable, "-m", "simulator", "bench", "--render", str(data), "--output", str(report)],
                   check=True, timeout=60, stdout=subprocess.DEVNULL)
    fleet = report.read_text()
    assert fleet.startswith("# Benchmarks\n")
    assert "| Concurrent chargers held by one adapter | 20,000 for 10 min, 0 unexpected" in fleet
    assert "sum(range(10**6))" not in fleet
    assert "[benchmarks-one-process.md](benchmarks-one-process.md)" in fleet, "the fleet report points to it"


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_terminated_bench_stops_the_services_it_started(tmp_path: Path) -> None:
    bench = subprocess.Popen([sys.executable, "-m", "simulator", "bench", "--only", "hold", "--chargers", "5",
                              "--duration", "120", "--workers", "1", "--output", str(tmp_path / "b.md"),
                              "--workdir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert bench.stderr is not None
    for line in bench.stderr:  # progress lines start once the broker and the adapter are up
        if line.startswith("soak"):
            break
    services = _children(bench.pid)
    assert len(services) >= 2, "broker and adapter"
    bench.terminate()
    bench.communicate(timeout=60)
    assert [pid for pid in services if Path(f"/proc/{pid}").exists()] == []
