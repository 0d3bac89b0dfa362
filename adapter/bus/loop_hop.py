"""Calls from awscrt's threads onto the event loop, batched.

At thousands of PUBACKs a second, one ``call_soon_threadsafe`` per completion costs a handle and a loop
wake-up each; the broker acknowledges in bursts, so a burst that arrives while the loop is busy is run by
one wake-up instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)


class LoopHop:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._calls: deque[tuple[Callable[..., None], tuple[object, ...]]] = deque()
        self._scheduled = False

    def call(self, callback: Callable[..., None], *args: object) -> None:
        """Thread-safe. A call queued after ``_run`` counted the queue finds ``_scheduled`` already false
        (cleared before counting), so it schedules a run itself: nothing is stranded. A racing second
        wake-up is harmless."""
        self._calls.append((callback, args))
        if not self._scheduled:
            self._scheduled = True
            with contextlib.suppress(RuntimeError):  # "Event loop is closed": awscrt's threads outlive it
                self._loop.call_soon_threadsafe(self._run)

    def _run(self) -> None:
        self._scheduled = False
        calls = self._calls
        for _ in range(len(calls)):  # not ``while calls``: a steady stream must not starve the loop
            callback, args = calls.popleft()
            try:
                callback(*args)
            except Exception:
                log.exception("callback from an awscrt thread failed", extra={"callback": repr(callback)})
