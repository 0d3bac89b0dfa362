"""Refuse a charger id for a while after repeated wrong passwords (password guessing).

In-memory and per adapter process, O(1) per call; the number of ids tracked is bounded, least recently
failed first out.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Failures:
    window_start: float
    count: int = 0
    blocked_until: float = 0.0


class Throttle:
    def __init__(self, max_failures: int = 5, window_s: float = 60.0, backoff_s: float = 60.0, *,
                 max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.backoff_s = backoff_s
        self._max_keys = max_keys
        self._clock = clock
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    def retry_after(self, key: str) -> float:
        """Seconds ``key`` stays refused; 0 when it may try."""
        entry = self._keys.get(key)
        return 0.0 if entry is None else max(0.0, entry.blocked_until - self._clock())

    def failure(self, key: str) -> None:
        now = self._clock()
        entry = self._keys.get(key)
        if entry is None or now - entry.window_start >= self.window_s:
            entry = self._keys[key] = _Failures(window_start=now)
        self._keys.move_to_end(key)
        entry.count += 1
        if entry.count >= self.max_failures:
            entry.blocked_until = now + self.backoff_s
            entry.window_start, entry.count = now + self.backoff_s, 0  # counting resumes after the block
        if len(self._keys) > self._max_keys:
            self._keys.popitem(last=False)

    def success(self, key: str) -> None:
        self._keys.pop(key, None)
