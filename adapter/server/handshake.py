"""The opening handshake: path and charger id, credentials, subprotocol; plus the small HTTP endpoints.

Everything here answers with an HTTP status before a WebSocket exists, so a bad id never reaches MQTT.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from adapter.observability import names
from adapter.observability.metrics import METRICS
from adapter.ocpp.versions import Version, negotiate, parse_offered
from adapter.security.auth import Authenticator, HandshakeContext
from adapter.server.context import AdapterContext

log = logging.getLogger(__name__)
_CAPACITY_RETRY_S = 30  # seconds a charger refused at capacity waits: long enough for others to settle

PROTOCOL_HEADER = "Sec-WebSocket-Protocol"


@dataclass(slots=True)
class Admitted:
    """What the handshake learned, handed to the session."""

    charger_id: str
    version: Version | None
    boot_status: str | None


def charger_id_from_path(path: str, prefix: str) -> str | None:
    """``/{prefix}/{id}`` or a bare ``/{id}``; query strings ignored; ``None`` when the shape is wrong."""
    path = path.split("?", 1)[0]
    parts = path.strip("/").split("/") if path.strip("/") else []
    if len(parts) == 2 and parts[0] == prefix:
        return unquote(parts[1])
    if len(parts) == 1 and parts[0] != prefix:
        return unquote(parts[0])
    return None


class Handshake:
    def __init__(self, ctx: AdapterContext, authenticator: Authenticator, capacity: int) -> None:
        self.ctx = ctx
        self.authenticator = authenticator
        self.capacity = capacity  # chargers this process may hold (see server/capacity.py)
        # Weak: a handshake that fails after process_request (no Sec-WebSocket-Key, say) never reaches the
        # handler that takes its entry out.
        self.admitted: weakref.WeakKeyDictionary[ServerConnection, Admitted] = weakref.WeakKeyDictionary()

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return self._http(connection, path)
        raw_id = charger_id_from_path(request.path, self.ctx.settings.path_prefix)
        if raw_id is None:
            return self._refuse(connection, HTTPStatus.NOT_FOUND, "expected /{prefix}/{charge_point_id}", None)
        sessions = self.ctx.sessions
        if raw_id not in sessions and len(sessions) + len(self.admitted) >= self.capacity:  # a reconnect replaces
            return self._refuse(connection, HTTPStatus.SERVICE_UNAVAILABLE, "adapter at capacity; retry later",
                                None, (("Retry-After", str(_CAPACITY_RETRY_S)),))
        authorization = request.headers.get_all("Authorization")
        if len(authorization) > 1:
            return self._refuse(connection, HTTPStatus.BAD_REQUEST, "more than one Authorization header", None)
        try:
            decision = await self.authenticator.authenticate(HandshakeContext(
                charger_id=raw_id, authorization=authorization[0] if authorization else None,
                tls=connection.transport.get_extra_info("ssl_object") is not None,
                source=connection.remote_address[0] if connection.remote_address else None,
                peer_cert=_peer_cert(connection)))
        except asyncio.CancelledError:
            if self.ctx.ready:  # not a shutdown: the open timeout fired while the adapter itself was slow
                self._timed_out(connection, raw_id)
            raise
        if not decision.ok or decision.record is None:
            return self._refuse(connection, HTTPStatus(decision.status), decision.reason,
                                decision.record.charger_id if decision.record else None, decision.headers)
        charger_id = decision.record.charger_id
        offered = parse_offered(request.headers.get_all(PROTOCOL_HEADER))
        if PROTOCOL_HEADER in request.headers:
            del request.headers[PROTOCOL_HEADER]
        if offered:
            request.headers[PROTOCOL_HEADER] = ", ".join(offered)
        fallback = Version(self.ctx.settings.fallback_version) if self.ctx.settings.fallback_version else None
        self.admitted[connection] = Admitted(charger_id, negotiate(offered, fallback=fallback),
                                                 decision.record.boot_status)
        return None

    def select_subprotocol(self, connection: ServerConnection,
                           subprotocols: Sequence[Subprotocol]) -> Subprotocol | None:
        """No agreement: finish without the header (the session then closes, as the spec says)."""
        admitted = self.admitted.get(connection)
        if admitted is None or admitted.version is None or admitted.version.subprotocol not in subprotocols:
            return None
        return Subprotocol(admitted.version.subprotocol)

    def _refuse(self, connection: ServerConnection, status: HTTPStatus, reason: str, charger_id: str | None,
                headers: tuple[tuple[str, str], ...] = ()) -> Response:
        """The reason never carries a secret: it is logged once and sent as the body."""
        METRICS.inc(names.ERRORS, Kind=f"handshake_{status.value}")
        log.warning("handshake refused", extra={"status": status.value, "reason": reason, "charger_id": charger_id,
                                                "remote": remote_text(connection)})
        response = connection.respond(status, f"{reason}\n")
        for name, value in headers:
            response.headers[name] = value
        return response

    @staticmethod
    def _timed_out(connection: ServerConnection, raw_id: str) -> None:
        """websockets drops a connection whose open timeout fires without a word; this is the word."""
        METRICS.inc(names.ERRORS, Kind="handshake_timeout")
        log.warning("handshake timed out while authenticating (adapter overloaded?)",
                    extra={"charger_id": raw_id[:64], "remote": remote_text(connection)})

    def _http(self, connection: ServerConnection, path: str) -> Response:
        if path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if path == "/readyz":
            ready = self.ctx.ready and self.ctx.bus.control.connected
            return connection.respond(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE,
                                      "ready\n" if ready else "not ready\n")
        if path == "/metrics":
            METRICS.set_gauge(names.ACTIVE_CONNECTIONS, len(self.ctx.sessions))
            response = connection.respond(HTTPStatus.OK, METRICS.render_prometheus())
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "text/plain; version=0.0.4"
            return response
        return connection.respond(HTTPStatus.UPGRADE_REQUIRED, "this endpoint speaks OCPP over WebSocket\n")


def remote_text(connection: ServerConnection) -> str | None:
    """The peer as "host:port": with --proxy-protocol, the client its front named, not the front."""
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else None


def _peer_cert(connection: ServerConnection) -> dict[str, object] | None:
    ssl_object = connection.transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    return dict(cert) if cert else None
