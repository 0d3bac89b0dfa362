"""A lasting Python thread state for each awscrt thread that calls into Python.

awscrt enters Python from its event-loop threads with ``PyGILState_Ensure`` and leaves with
``PyGILState_Release``. A thread CPython did not start has no thread state of its own, so each entry
creates one (a 16 KiB frame stack: mmap, gettid) and each exit destroys it (munmap, whose TLB shootdown
interrupts the other cores). With one entry per PUBACK that was a mmap/munmap pair per message (perf trace
at 2,000 msg/s: 7,274 each of mmap, munmap and gettid in 5 s on awscrt's thread; none after). One
``PyGILState_Ensure`` that is never released keeps the state: later entries only take the GIL.
"""

from __future__ import annotations

import ctypes
import threading

_adopted: set[int] = set()


def adopt_current_thread() -> None:
    """Call from code awscrt runs on its own thread; the first call per thread keeps its thread state."""
    ident = threading.get_ident()
    if ident not in _adopted:
        ctypes.pythonapi.PyGILState_Ensure()
        _adopted.add(ident)
