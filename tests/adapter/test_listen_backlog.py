"""A reconnect storm queues in the kernel while the adapter is busy, instead of chargers' SYNs being dropped."""

from __future__ import annotations

import select
import socket
import time
from typing import Any

import pytest

STORM = 250


def connect_while_the_loop_is_blocked(port: int) -> int:
    """Open STORM connections without yielding to the event loop (so the adapter accepts none of them) and
    return how many the kernel established within 2 s; a dropped SYN is retried only after 1 s and 3 s."""
    socks = [socket.socket() for _ in range(STORM)]
    try:
        for sock in socks:
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
        pending = set(socks)
        deadline = time.monotonic() + 2.0
        while pending and time.monotonic() < deadline:
            _, writable, _ = select.select([], list(pending), [], 0.1)
            pending -= set(writable)
        return STORM - len(pending)
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize(("backlog", "queued"), [(4096, STORM), (100, 101)])  # Linux holds backlog + 1
async def test_the_listen_backlog_holds_a_storm_the_adapter_has_not_accepted_yet(
        adapter_factory: Any, backlog: int, queued: int) -> None:
    adapter = await adapter_factory(listen_backlog=backlog)
    assert connect_while_the_loop_is_blocked(adapter.port) == queued
