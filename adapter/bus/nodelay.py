"""TCP_NODELAY for the sockets awscrt opens to the broker.

aws-c-io leaves Nagle's algorithm on and awscrt offers no option to turn it off. A back-end request answered
within a millisecond then waits for the broker's delayed ACK (~40 ms on Linux): the response PUBLISH follows
the request's PUBACK and Nagle holds it until that PUBACK is acknowledged. A socket option belongs to the
socket, not to the descriptor, so setting it through a duplicate of awscrt's descriptor is enough. Only TCP
sockets connected to the broker's address are touched; Linux only (it finds them through /proc).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_FDS = Path("/proc/self/fd")


def broker_addresses(host: str, port: int) -> set[tuple[str, int]]:
    return {(str(info[4][0]), port) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}


class NodelaySetter:
    """Remembers the sockets it has looked at, so a rescan after more connections costs one readlink per
    descriptor and touches only the new sockets."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def scan(self) -> int:
        """Turn Nagle off on every new TCP socket connected to the broker; returns how many. Blocking (DNS, a
        scan of the process's descriptors): call it off the event loop."""
        if not _FDS.is_dir():
            return 0
        with self._lock:  # one scan at a time: each builds on the last one's findings
            return self._scan()

    def _scan(self) -> int:
        peers = broker_addresses(self.host, self.port)
        seen: set[str] = set()
        done = 0
        for entry in os.scandir(_FDS):
            try:
                link = os.readlink(entry.path)
            except OSError:  # closed since the scan began
                continue
            if not link.startswith("socket:"):
                continue
            if link in self._seen:
                seen.add(link)
                continue
            outcome = _set_if_towards(int(entry.name), peers)
            if outcome is not None:  # still connecting: look again next time
                seen.add(link)
                done += outcome
        self._seen = seen
        return done


def _set_if_towards(fd: int, peers: set[tuple[str, int]]) -> bool | None:
    """True: set; False: not a socket to the broker; None: can't tell yet (not connected, or gone)."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return None
    with sock:
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
            return False
        try:
            if sock.getpeername()[:2] not in peers:
                return False
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            return None
    return True


class NodelayScheduler:
    """Batches requests: however many clients connect in a burst (a boot storm in per-charger mode), one scan
    runs a second later, on a worker thread. A scan reads one link per open descriptor (tens of milliseconds at
    20,000 chargers), so the delay also bounds its share of a core during a storm."""

    def __init__(self, setter: NodelaySetter, delay_s: float = 1.0) -> None:
        self.setter = setter
        self.delay_s = delay_s
        self._waiting = False
        self.scan: asyncio.Future[int] | None = None  # the latest scan, requested or running

    def request(self) -> None:
        """Call on the event loop, e.g. whenever an MQTT client has connected."""
        if self._waiting:
            return
        self._waiting = True
        loop = asyncio.get_running_loop()
        self.scan = scan = loop.create_future()
        scan.add_done_callback(_report)
        loop.call_later(self.delay_s, self._start, scan)

    def _start(self, scan: asyncio.Future[int]) -> None:
        self._waiting = False
        running = asyncio.get_running_loop().run_in_executor(None, self.setter.scan)
        running.add_done_callback(lambda f: _chain(f, scan))


def _chain(source: asyncio.Future[int], target: asyncio.Future[int]) -> None:
    if target.cancelled():
        return
    error = source.exception()
    if error is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())


def _report(future: asyncio.Future[int]) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        log.warning("could not turn Nagle off on the MQTT sockets", extra={"error": repr(error)})
    elif future.result():
        log.debug("TCP_NODELAY set", extra={"sockets": future.result()})
