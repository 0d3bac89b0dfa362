"""Live progress of a run: one line rewritten in place on a terminal, a plain line every so often otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from simulator.stats import Stats


class Progress:
    def __init__(self, label: str, stream: TextIO | None = None, every_s: float = 10.0) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = 1.0 if self.tty else every_s
        self.began = time.monotonic()
        self._last_at = self.began
        self._last_sent = 0
        self._written = False

    def update(self, total: Stats) -> None:
        now = time.monotonic()
        if now - self._last_at < self.every_s:
            return
        rate = (total.messages_sent - self._last_sent) / (now - self._last_at)
        self._last_at, self._last_sent = now, total.messages_sent
        p99 = total.latency.percentile(99)
        line = (f"{self.label} {now - self.began:6.0f}s  connected {total.connected}/{total.chargers}"
                f"  accepted {total.accepted}  msg/s {rate:,.0f}  errors {total.error_count}"
                f"  p99 {'-' if p99 is None else f'{p99:.1f}'} ms")
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._written = True

    def close(self) -> None:
        if self.tty and self._written:
            self.stream.write("\n")
            self.stream.flush()
