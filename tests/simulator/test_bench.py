"""The bench end to end at toy sizes: its own broker, the adapter as a subprocess, the relay, the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_the_bench_starts_everything_and_writes_its_report(tmp_path: Path) -> None:
    report, data = tmp_path / "benchmarks.md", tmp_path / "bench.json"
    subprocess.run([sys.executable, "-m", "simulator", "bench", "--only", "boot-storm,hold,baseline",
                    "--boot-storm", "20", "--chargers", "20", "--duration", "3", "--connect-rate", "100",
                    "--throughput-chargers", "20", "--start-rate", "20", "--stages", "2", "--stage-seconds", "1",
                    "--workers", "1", "--output", str(report), "--json", str(data), "--workdir", str(tmp_path)],
                   check=True, timeout=120, stdout=subprocess.DEVNULL)
    results = json.loads(data.read_text())["results"]
    assert set(results) == {"boot-storm", "hold", "baseline"}
    assert results["boot-storm"]["boot_storm"]["all_accepted"]
    assert results["hold"]["adapter_memory"]["connected"] == 20
    assert results["baseline"]["throughput"]["stages"]
    text = report.read_text()
    assert "| Boot storm | 10,000 chargers all accepted within 30 s | all 20 accepted in" in text
    assert "## End-to-end throughput ramp: no-parsing relay (the ceiling)" in text
