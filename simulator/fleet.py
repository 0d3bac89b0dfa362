"""The chargers of one process: started at a connect rate, commanded and stopped together."""

from __future__ import annotations

import asyncio
import random
import time

from simulator.charger import Charger
from simulator.model import Behaviour, ChargerSpec, FleetContext
from simulator.stats import Stats


class Fleet:
    """The chargers of one process, started at a connect rate and stopped together."""

    def __init__(self, url: str, specs: list[ChargerSpec], behaviour: Behaviour, stats: Stats,
                 seed: int) -> None:
        self.ctx = FleetContext(url, behaviour, stats)
        rng = random.Random(seed)
        self.chargers = [Charger(spec, self.ctx, rng) for spec in specs]
        stats.chargers = len(specs)
        self._tasks: list[asyncio.Task[None]] = []
        self._starter: asyncio.Task[None] | None = None

    def start(self, connect_rate: float) -> None:
        """Start every charger, all at once (rate 0) or so many per second."""
        self.ctx.stats.started_at = time.time()
        self._starter = asyncio.create_task(self._start(connect_rate))

    async def _start(self, connect_rate: float) -> None:
        if connect_rate <= 0:
            self._tasks = [asyncio.create_task(c.run()) for c in self.chargers]
            return
        loop = asyncio.get_running_loop()
        began = loop.time()
        for n, charger in enumerate(self.chargers):
            self._tasks.append(asyncio.create_task(charger.run()))
            due = began + (n + 1) / connect_rate
            if due > loop.time() + 0.01:
                await asyncio.sleep(due - loop.time())

    def drop_all(self) -> None:
        for charger in self.chargers:
            charger.drop()

    def storm(self, at: float) -> None:
        self.ctx.storm.start(at)

    def set_rate_plan(self, plan: list[tuple[float, float]]) -> None:
        self.ctx.rate_plan = plan
        for charger in self.chargers:
            charger.rephase_meters()

    async def stop(self) -> None:
        """Cancel every charger; each closes its WebSocket cleanly on the way out."""
        if self._starter is not None:
            self._starter.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, *(t for t in (self._starter,) if t), return_exceptions=True)
