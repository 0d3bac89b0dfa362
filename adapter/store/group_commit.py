"""One thread for a store with a single writer: calls that queue up while it works run as one transaction.

Why: sqlite3 releases and retakes the GIL around every statement, and while the event loop is busy each
retake waits for the loop's switch interval (5 ms). A transaction per call (BEGIN, statement, COMMIT) cost
~40 ms per write under load in a measurement here, so a storm of connects queued its handshakes' lookups
behind seconds of bookkeeping writes. Calls queued together share one BEGIN and one COMMIT instead.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any

log = logging.getLogger(__name__)

Job = tuple[Callable[[], Any], Future[Any]]


class GroupCommitWorker:
    def __init__(self, batch: Callable[[], AbstractContextManager[object]], *, max_batch: int = 256,
                 name: str = "store") -> None:
        """``batch()`` opens a scope whose writes commit together, and keeps none of them if the scope
        raises."""
        self._batch = batch
        self._max_batch = max_batch
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((fn, future))
        return future

    def shutdown(self) -> None:
        """Runs what is queued, then stops the thread."""
        self._jobs.put(None)
        self._thread.join()

    def _work(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            jobs = [first]
            stop = False
            while len(jobs) < self._max_batch:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
            self._run([job for job in jobs if job[1].set_running_or_notify_cancel()])
            if stop:
                return

    def _run(self, jobs: list[Job]) -> None:
        if len(jobs) == 1:
            _run_alone(jobs[0])
            return
        results = []
        try:
            with self._batch():
                for fn, _ in jobs:
                    results.append(fn())
        except Exception:  # nothing of the batch was kept: each call again, alone, fails only itself
            log.debug("store batch of %d calls failed; running them one by one", len(jobs), exc_info=True)
            for job in jobs:
                _run_alone(job)
            return
        for (_, future), result in zip(jobs, results, strict=True):
            future.set_result(result)


def _run_alone(job: Job) -> None:
    fn, future = job
    try:
        result = fn()
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)
