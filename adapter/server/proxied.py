"""Connections that start with a PROXY protocol header (``--proxy-protocol``, behind an NLB).

websockets' connection is itself the asyncio protocol: this subclass holds back the first bytes until the
header is complete, takes it off, and hands websockets only what follows, so the HTTP handshake never sees
it. A stalled header is bounded by the open timeout, which websockets starts when the connection is made.
"""

from __future__ import annotations

import logging
from typing import Any

from websockets.asyncio.server import ServerConnection

from adapter.observability import names
from adapter.observability.metrics import METRICS
from adapter.server import proxy_protocol
from adapter.server.handshake import remote_text

log = logging.getLogger(__name__)


class ProxiedConnection(ServerConnection):
    """``remote_address`` is the client the header names (the throttle, logs and lifecycle events use it);
    the socket's own peer for a header without one (the NLB's health checks). A connection whose first bytes
    are no valid header is aborted unanswered, before the HTTP handshake: it did not come through the front.
    """

    # The header's bytes so far; None once it is parsed, or refused (the transport is then aborted, and
    # asyncio delivers nothing more to an aborted transport).
    _pending: bytes | None = b""
    _source: tuple[str, int] | None = None

    @property
    def remote_address(self) -> Any:
        return self._source if self._source is not None else super().remote_address

    def data_received(self, data: bytes) -> None:
        if self._pending is None:
            super().data_received(data)
            return
        received = self._pending + data
        try:
            header = proxy_protocol.parse(received)
        except proxy_protocol.ProxyHeaderError as err:
            self._refuse(str(err), received)
            return
        if header is None:
            self._pending = received
            return
        self._pending, self._source = None, header.source
        if rest := received[header.length:]:
            super().data_received(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._pending:  # closed by the open timeout or the peer while the header was incomplete
            self._count_and_log("incomplete PROXY protocol header", self._pending)
        super().connection_lost(exc)

    def _refuse(self, reason: str, received: bytes) -> None:
        self._pending = None
        self._count_and_log(reason, received)
        self.transport.abort()

    def _count_and_log(self, reason: str, received: bytes) -> None:
        """The peer here is the socket's own: the sender of the bad header, a front or something that
        bypassed it; the first bytes tell which (``474554`` is "GET": a front that sends no header)."""
        METRICS.inc(names.ERRORS, Kind="proxy_protocol")
        log.warning("connection without a valid PROXY protocol header closed",
                    extra={"reason": reason, "peer": remote_text(self), "received_bytes": len(received),
                           "first_bytes": received[:16].hex()})

