"""Counters and latency histograms that cost almost nothing per message and merge across processes.

A fleet of thousands of chargers records every round trip; keeping raw samples would grow without bound,
so latencies go into log-spaced buckets (about 1% wide), which are mergeable by simple addition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

_MIN_MS = 0.01
_GROWTH = 1.02
_LOG_GROWTH = math.log(_GROWTH)
_BUCKETS = 1000  # 0.01 ms * 1.02**1000 is far beyond any timeout


def _bucket(ms: float) -> int:
    if ms <= _MIN_MS:
        return 0
    return min(_BUCKETS - 1, int(math.log(ms / _MIN_MS) / _LOG_GROWTH) + 1)


def _bucket_value(index: int) -> float:
    """The upper edge of a bucket: percentiles err on the pessimistic side."""
    return _MIN_MS * _GROWTH**index


class Histogram:
    """Latency distribution in milliseconds."""

    __slots__ = ("count", "counts", "max_ms", "total_ms")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.count = 0
        self.total_ms = 0.0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        self.counts[_bucket(ms)] += 1
        self.count += 1
        self.total_ms += ms
        if ms > self.max_ms:
            self.max_ms = ms

    def merge(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.count += other.count
        self.total_ms += other.total_ms
        self.max_ms = max(self.max_ms, other.max_ms)

    def percentile(self, p: float) -> float | None:
        if not self.count:
            return None
        rank = math.ceil(self.count * p / 100.0)
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                return min(_bucket_value(index), self.max_ms)
        return self.max_ms

    def summary(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {
            "count": self.count,
            "p50": rounded(self.percentile(50)),
            "p95": rounded(self.percentile(95)),
            "p99": rounded(self.percentile(99)),
            "max": rounded(self.max_ms) if self.count else None,
            "mean": rounded(self.total_ms / self.count) if self.count else None,
        }


@dataclass
class Stats:
    """What one process's chargers did; `merge` folds in another process's."""

    chargers: int = 0
    started_at: float = 0.0  # wall time the first charger was started
    connected: int = 0
    max_connected: int = 0
    accepted: int = 0  # chargers whose first BootNotification was accepted
    last_first_accept: float = 0.0  # wall time of the latest first acceptance
    accepted_after_storm: int = 0
    last_storm_accept: float = 0.0
    messages_sent: int = 0
    messages_received: int = 0
    calls: int = 0
    calls_cut: int = 0  # CALLs sent whose answer was still awaited when the run stopped the charger
    cpu_s: float = 0.0  # CPU time the worker processes used
    disconnects: int = 0  # closed by the server or the network, not by the charger
    storm_disconnects: int = 0  # the same, but during a reconnect storm the scenario caused
    reconnects: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    requests_answered: dict[str, int] = field(default_factory=dict)
    latency: Histogram = field(default_factory=Histogram)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def answered(self, action: str) -> None:
        self.requests_answered[action] = self.requests_answered.get(action, 0) + 1

    def on_connect(self) -> None:
        self.connected += 1
        if self.connected > self.max_connected:
            self.max_connected = self.connected

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def merge(self, other: Stats) -> None:
        for name in ("chargers", "connected", "max_connected", "accepted", "accepted_after_storm",
                     "messages_sent", "messages_received", "calls", "calls_cut", "cpu_s", "disconnects",
                     "storm_disconnects", "reconnects"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.started_at and (not self.started_at or other.started_at < self.started_at):
            self.started_at = other.started_at
        self.last_first_accept = max(self.last_first_accept, other.last_first_accept)
        self.last_storm_accept = max(self.last_storm_accept, other.last_storm_accept)
        for kind, n in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + n
        for action, n in other.requests_answered.items():
            self.requests_answered[action] = self.requests_answered.get(action, 0) + n
        self.latency.merge(other.latency)


def merged(parts: list[Stats]) -> Stats:
    total = Stats()
    for part in parts:
        total.merge(part)
    return total
