"""Chargers of one process (`Fleet`), and a fleet spread over worker processes (`ProcessFleet`).

A process may hold only so many sockets (20,000 files here) and use one core, so large runs split the
chargers over processes. Each worker runs a `Fleet` on uvloop, sends its `Stats` to the parent every second
over a pipe, and obeys a few commands (drop all sockets, a storm began, a new rate plan, stop).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import uvloop

from simulator.charger import Charger
from simulator.model import Behaviour, ChargerSpec, FleetContext
from simulator.stats import Stats, merged

SNAPSHOT_S = 1.0


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


@dataclass(frozen=True)
class WorkerJob:
    url: str
    specs: list[ChargerSpec]
    behaviour: Behaviour
    connect_rate: float  # per second, for this worker's share
    seed: int


def worker_main(job: WorkerJob, conn: Connection) -> None:
    """Entry point of a worker process."""
    uvloop.run(_serve(job, conn))


async def _serve(job: WorkerJob, conn: Connection) -> None:
    stats = Stats()
    fleet = Fleet(job.url, job.specs, job.behaviour, stats, job.seed)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_command() -> None:
        while conn.poll():
            try:
                command, argument = conn.recv()
            except EOFError:  # the parent went away
                command, argument = "stop", None
                loop.remove_reader(conn.fileno())
            if command == "stop":
                stopping.set()
                return
            if command == "drop":
                fleet.drop_all()
            elif command == "storm":
                fleet.storm(argument)
            elif command == "plan":
                fleet.set_rate_plan(argument)

    loop.add_reader(conn.fileno(), on_command)
    fleet.start(job.connect_rate)
    while not stopping.is_set():
        conn.send(("snapshot", stats))
        try:
            async with asyncio.timeout(SNAPSHOT_S):
                await stopping.wait()
        except TimeoutError:
            pass
    loop.remove_reader(conn.fileno())
    await fleet.stop()
    conn.send(("final", stats))


class ProcessFleet:
    """Worker processes running a fleet between them, seen from the parent as one."""

    def __init__(self, jobs: list[WorkerJob]) -> None:
        self.jobs = jobs
        self._conns: list[Connection] = []
        self._procs: list[BaseProcess] = []
        self._latest: list[Stats] = [Stats(chargers=len(job.specs)) for job in jobs]
        self._finals: dict[int, Stats] = {}
        self._all_final = asyncio.Event()
        self.max_connected = 0
        self.listeners: list[Callable[[Stats], None]] = []

    async def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        loop = asyncio.get_running_loop()
        for index, job in enumerate(self.jobs):
            parent, child = context.Pipe()
            process = context.Process(target=worker_main, args=(job, child), daemon=True,
                                      name=f"simulator-worker-{index}")
            process.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(process)
            loop.add_reader(parent.fileno(), self._on_message, index)

    def _on_message(self, index: int) -> None:
        conn = self._conns[index]
        while True:
            try:
                if not conn.poll():
                    return
                kind, stats = conn.recv()
            except (EOFError, OSError):
                self._worker_gone(index)
                return
            self._latest[index] = stats
            if kind == "final":
                self._finals[index] = stats
                self._worker_gone(index)
                return
            total = self.totals()
            self.max_connected = max(self.max_connected, total.connected)
            for listener in self.listeners:
                listener(total)

    def _worker_gone(self, index: int) -> None:
        asyncio.get_running_loop().remove_reader(self._conns[index].fileno())
        if index not in self._finals:
            lost = self._latest[index]
            lost.error("worker_died")
            self._finals[index] = lost
        if len(self._finals) == len(self.jobs):
            self._all_final.set()

    def totals(self) -> Stats:
        return merged(self._latest)

    def broadcast(self, command: str, argument: Any = None) -> None:
        for index, conn in enumerate(self._conns):
            if index not in self._finals:
                conn.send((command, argument))

    async def wait_for(self, predicate: Callable[[Stats], bool], within: float) -> bool:
        """Wait until the merged snapshot satisfies the predicate; False on timeout."""
        reached = asyncio.Event()

        def check(total: Stats) -> None:
            if predicate(total):
                reached.set()

        check(self.totals())
        self.listeners.append(check)
        try:
            async with asyncio.timeout(within):
                await reached.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self.listeners.remove(check)

    async def stop(self) -> Stats:
        self.broadcast("stop")
        await self._all_final.wait()
        for process in self._procs:
            await asyncio.to_thread(process.join, 30)
        for conn in self._conns:
            conn.close()
        return merged([self._finals[i] for i in range(len(self.jobs))])
