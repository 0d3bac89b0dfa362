"""LoopHop: calls from foreign threads run on the loop, in order, batched, each isolated from the others."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from adapter.bus.loop_hop import LoopHop


async def test_calls_from_threads_run_on_the_loop_in_order() -> None:
    loop = asyncio.get_running_loop()
    hop = LoopHop(loop)
    seen: list[tuple[int, int, bool]] = []
    done = asyncio.Event()
    per_thread, threads = 2_000, 4

    def record(thread: int, n: int) -> None:
        seen.append((thread, n, threading.get_ident() == loop_thread))
        if len(seen) == per_thread * threads:
            done.set()

    loop_thread = threading.get_ident()
    def produce(thread: int) -> None:
        for n in range(per_thread):
            hop.call(record, thread, n)

    workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    async with asyncio.timeout(10):
        await done.wait()
    for worker in workers:
        worker.join()
    assert all(on_loop for _, _, on_loop in seen)
    for t in range(threads):
        assert [n for thread, n, _ in seen if thread == t] == list(range(per_thread))


async def test_a_burst_costs_one_wake_up_and_a_failing_call_does_not_stop_the_rest(
        caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    hop = LoopHop(loop)
    wakeups = 0
    original = loop.call_soon_threadsafe

    def counting(callback: Callable[..., object], *args: object) -> asyncio.Handle:
        nonlocal wakeups
        wakeups += callback == hop._run
        return original(callback, *args)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign, assignment]
    ran: list[int] = []
    finished = asyncio.Event()

    def fail() -> None:
        raise ValueError("boom")

    def burst() -> None:
        hop.call(ran.append, 1)
        hop.call(fail)
        hop.call(ran.append, 2)
        hop.call(finished.set)

    try:
        thread = threading.Thread(target=burst)
        thread.start()
        thread.join()  # blocks the loop on purpose: the whole burst is queued while the loop is busy
        async with asyncio.timeout(10):
            await finished.wait()
    finally:
        del loop.call_soon_threadsafe
    assert ran == [1, 2]
    assert wakeups == 1
    assert [r.getMessage() for r in caplog.records if r.name == "adapter.bus.loop_hop"] == [
        "callback from an awscrt thread failed"]
