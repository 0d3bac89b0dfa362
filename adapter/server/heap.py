"""Garbage-collector settings for a serving process that holds thousands of long-lived sessions.

CPython's defaults collect the young generation every 700 net allocations, so anything that lives a few tens
of milliseconds (an in-flight message, a PUBACK awaited) is promoted, and promotions soon trigger a full
collection. A full collection walks every session's objects while holding the GIL: at 1,000 chargers it
stalled the loop for 60-120 ms a dozen times a minute, and it grows with the charger count. The steady state
makes no cyclic garbage (a 1 s DEBUG_SAVEALL sample under load found none), so those passes buy nothing.

Measured at 1,500 msg/s, 1,000 chargers, one worker: end-to-end p99 127 -> 15 ms, adapter CPU 0.66 -> 0.59
cores. Sessions that end still leave cycles (session <-> its tasks); young collections and the rarer full
ones reclaim them.

The young threshold is 100,000, not 10,000: in a connect storm nearly everything allocated lives on (each
session keeps ~140 objects), so collecting it young is wasted, and every 10 young passes a middle-generation
pass re-walked it all, and full passes followed. Boot storm of 5,000 on one worker, 5 runs each: all accepted
in 8.5 s on average instead of 10.0 s, collector time 3.3-3.5 s -> 1.7-1.8 s (middle passes 1.6 s -> 0.55 s,
no full pass instead of one of 0.65 s). In steady state allocations and frees balance, so young passes stay
rare either way; the price is a longer pause when one does come (up to 0.3 s seen in a storm on a slow host,
where a 10,000 pass took up to 0.1 s and a full pass 0.65 s).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 100_000


def settle_for_serving() -> None:
    """Call once start-up is done: what it built (modules, the server, the MQTT clients) lives as long as the
    process, so it moves to the permanent generation and no collection walks it again."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
