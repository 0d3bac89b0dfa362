"""The serving process's collector settings (in a child process, so this one's collector is left alone)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import gc
from adapter.server import heap
default = gc.get_threshold()
heap.settle_for_serving()
threshold = gc.get_threshold()
assert threshold == (heap.YOUNG_THRESHOLD, *default[1:]), threshold
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()  # start-up's objects are never walked again
assert all(len(gc.get_objects(g)) < 1000 for g in range(3))
print("ok")
"""


def test_settling_freezes_start_up_objects_and_collects_young_objects_less_often() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.stdout.strip() == "ok", done.stderr
