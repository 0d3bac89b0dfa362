"""A worker process of a `ProcessFleet`: `python -m simulator.worker FD`, FD one end of a socket pair.

It receives its `WorkerJob`, runs a `Fleet` on uvloop, reports `Stats` every second and obeys commands.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import uvloop

from simulator.fleet import Fleet
from simulator.model import Behaviour, ChargerSpec
from simulator.stats import Stats

SNAPSHOT_S = 1.0


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
        stats.cpu_s = time.process_time()
        conn.send(("snapshot", stats))
        try:
            async with asyncio.timeout(SNAPSHOT_S):
                await stopping.wait()
        except TimeoutError:
            pass
    loop.remove_reader(conn.fileno())
    await fleet.stop()
    stats.cpu_s = time.process_time()
    conn.send(("final", stats))


if __name__ == "__main__":
    channel = Connection(int(sys.argv[1]))
    worker_main(channel.recv(), channel)
