"""A fleet spread over worker processes, seen from the parent as one.

A process may hold only so many sockets (20,000 files here) and use one core, so large runs split the
chargers over processes. Each worker (``worker.py``) runs a `Fleet` on uvloop, sends its `Stats` every second
over a socket pair, and obeys a few commands (drop all sockets, a storm began, a new rate plan, stop).
Workers are plain subprocesses rather than multiprocessing children, so that whatever script imports the
simulator is never re-imported in them.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from simulator.stats import Stats, merged
from simulator.worker import WorkerJob


class ProcessFleet:
    """Worker processes running a fleet between them, seen from the parent as one."""

    def __init__(self, jobs: list[WorkerJob]) -> None:
        self.jobs = jobs
        self._conns: list[Connection] = []
        self._procs: list[asyncio.subprocess.Process] = []
        self._latest: list[Stats] = [Stats(chargers=len(job.specs)) for job in jobs]
        self._finals: dict[int, Stats] = {}
        self._all_final = asyncio.Event()
        self.max_connected = 0
        self.all_connected_at: float | None = None  # wall time every charger was first connected at once
        self.listeners: list[Callable[[Stats], None]] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for index, job in enumerate(self.jobs):
            ours, theirs = socket.socketpair()
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "simulator.worker", str(theirs.fileno()), pass_fds=[theirs.fileno()])
            theirs.close()
            conn = Connection(ours.detach())
            conn.send(job)
            self._conns.append(conn)
            self._procs.append(process)
            loop.add_reader(conn.fileno(), self._on_message, index)

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
            if self.all_connected_at is None and total.connected == total.chargers:
                self.all_connected_at = time.time()
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

    def worker_cpu(self) -> list[float]:
        """CPU seconds each worker had used at its last snapshot."""
        return [stats.cpu_s for stats in self._latest]

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
            await process.wait()
        for conn in self._conns:
            conn.close()
        return merged([self._finals[i] for i in range(len(self.jobs))])
