"""``--workers N``: N processes share the port with SO_REUSEPORT, so one machine uses all its cores.

The kernel spreads new connections across workers; a charger's MQTT session lives in the worker that holds
its WebSocket. Worker 0 is primary: it runs the local shadow stand-in and replays the outbox.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import signal
from types import FrameType

from adapter import logs
from adapter.config import Settings
from adapter.server.app import run

log = logging.getLogger(__name__)


def _worker(settings: Settings, index: int) -> None:
    logs.configure(settings.log_level)
    worker_settings = dataclasses.replace(settings, adapter_id=f"{settings.adapter_id}-w{index}")
    _run_loop(worker_settings, primary=index == 0, reuse_port=True)


def _run_loop(settings: Settings, *, primary: bool, reuse_port: bool) -> None:
    try:
        import uvloop
        uvloop.run(run(settings, primary=primary, reuse_port=reuse_port))
    except ImportError:
        asyncio.run(run(settings, primary=primary, reuse_port=reuse_port))


def serve(settings: Settings) -> int:
    if settings.workers <= 1:
        _run_loop(settings, primary=True, reuse_port=False)
        return 0
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_worker, args=(settings, i), name=f"adapter-w{i}")
               for i in range(settings.workers)]
    for process in workers:
        process.start()

    def forward(signum: int, frame: FrameType | None) -> None:
        for process in workers:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for process in workers:
        process.join()
    failed = [p.name for p in workers if p.exitcode not in (0, -signal.SIGTERM, -signal.SIGINT)]
    if failed:
        log.error("workers exited abnormally", extra={"workers": failed})
    return 1 if failed else 0
