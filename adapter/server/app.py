"""Assembles one adapter process: store, bus, central system, WebSocket server; runs until signalled."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
import time
from collections.abc import Coroutine
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from adapter.bus.bus import Bus, MqttMode
from adapter.bus.delegate import MqttDelegate
from adapter.bus.endpoint import parse_endpoint
from adapter.bus.lifecycle import ADAPTER_LOST
from adapter.bus.local_shadow import LocalShadowService
from adapter.bus.topics import Topics
from adapter.config import Settings
from adapter.csms.central_system import CentralSystem, SessionState
from adapter.csms.policy import AuthPolicy, BootPolicy, CsmsPolicy
from adapter.observability import names
from adapter.observability.metrics import METRICS, run_emf_flusher
from adapter.security.auth import Authenticator
from adapter.security.limits import TokenBucket
from adapter.security.provisioning import ThingProvisioner
from adapter.security.tls import server_ssl_context
from adapter.server import heap, requests
from adapter.server.capacity import charger_capacity, raise_open_file_limit
from adapter.server.context import AdapterContext
from adapter.server.handshake import Handshake, remote_text
from adapter.server.proxied import ProxiedConnection
from adapter.server.session import CLOSE_GOING_AWAY, CLOSE_NORMAL, ChargerSession
from adapter.store.async_store import AsyncStore
from adapter.store.credentials import SecretUrl, with_credentials
from adapter.store.factory import open_store

log = logging.getLogger(__name__)

CLOSE_PROTOCOL_ERROR = 1002


class Adapter:
    """One process's adapter. ``start()`` then ``wait_closed()``; ``shutdown()`` drains sessions."""

    def __init__(self, settings: Settings, *, primary: bool = True, reuse_port: bool = False) -> None:
        self.settings = settings
        self.primary = primary
        self.reuse_port = reuse_port
        self.server: Server | None = None
        self.ctx: AdapterContext | None = None
        self.handshake: Handshake | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._closing = asyncio.Event()
        self._newest: dict[str, ServerConnection] = {}  # per charger id: its latest connection

    # ---- assembly --------------------------------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        fresh_url = SecretUrl(s.store_secret_id, s.store_url) if s.store_secret_id else None
        store = AsyncStore(open_store(with_credentials(s.store_url, s.store_username, s.store_password),
                                      fresh_url=fresh_url,
                                      audit_ttl_s=s.audit_ttl), audit_enabled=s.audit_log)
        await store.start()
        endpoint = parse_endpoint(s.mqtt_url, ca_file=s.mqtt_ca_file, cert_file=s.mqtt_cert_file,
                                  key_file=s.mqtt_key_file)
        bus = Bus(endpoint, mode=MqttMode(s.mqtt_mode), adapter_id=s.adapter_id, topics=Topics(),
                  pool_size=s.mqtt_pool_size, outbox=store if s.billing_outbox else None,
                  puback_timeout_s=s.puback_timeout, replay_outbox=self.primary)
        await bus.start()
        delegate = None
        if s.auth_policy == AuthPolicy.DELEGATE or s.delegate_data_transfer:
            delegate = MqttDelegate(bus.control, bus.topics, bus.adapter_id)
            await delegate.start()
        policy = CsmsPolicy(heartbeat_interval=s.heartbeat_interval, boot=BootPolicy(s.boot_policy),
                            auth=AuthPolicy(s.auth_policy), delegate_data_transfer=s.delegate_data_transfer,
                            delegate_timeout_s=s.delegate_timeout, v16_tolerate_preboot=s.v16_preboot == "tolerate")
        csms = CentralSystem(policy, store, store, delegate)
        provisioner = ThingProvisioner.create(s.aws_region) if s.iot_provisioning else None
        ctx = AdapterContext(s, csms, store, bus, spawn=self.spawn,
                             rate_limiter=lambda: TokenBucket(s.rate_limit, s.rate_burst), provisioner=provisioner)
        self.ctx = ctx
        local_broker = endpoint.url.startswith("mqtt:")
        if self.primary and (s.local_shadow == "on" or (s.local_shadow == "auto" and local_broker)):
            await LocalShadowService(bus.control).start()
        bus.on_lifecycle = self._on_lifecycle
        bus.on_orphan_request = self._on_orphan_request
        authenticator = Authenticator(
            store, registration=s.registration, front_tls_profile=s.front_tls_profile,
            max_pending=s.max_pending_handshakes, provisioner=provisioner)
        open_files = raise_open_file_limit()
        capacity = s.max_chargers or charger_capacity(open_files, per_charger_mqtt=s.mqtt_mode == "per-charger")
        self.handshake = handshake = Handshake(ctx, authenticator, capacity)
        # Client certificates are requested (not required) so profile 2 chargers can still connect; the
        # authenticator refuses profile 3 chargers that presented none.
        ssl_context = (server_ssl_context(s.tls_cert, s.tls_key, s.tls_ca, require_client_cert=False)
                       if s.tls_cert and s.tls_key else None)
        self.server = await serve(
            lambda ws: self._handle(ws, handshake), s.host, s.port, ssl=ssl_context,
            process_request=handshake.process_request, select_subprotocol=handshake.select_subprotocol,
            compression=None, max_size=s.max_message_size, max_queue=16,
            ping_interval=s.ping_interval or None, ping_timeout=s.ping_timeout or None,
            open_timeout=s.handshake_timeout, close_timeout=5, reuse_port=self.reuse_port,
            backlog=s.listen_backlog, server_header="ocpp-gateway",
            create_connection=ProxiedConnection if s.proxy_protocol else None,
        )
        self._loops.append(asyncio.create_task(self._idle_sweeper()))
        if s.emf_metrics:
            self._loops.append(asyncio.create_task(
                run_emf_flusher(METRICS, 60.0, lambda line: print(line, file=sys.stdout, flush=True))))
        ctx.ready = True
        log.info("adapter listening", extra={"port": self.port, "mqtt": endpoint.url, "mode": s.mqtt_mode,
                                             "adapter_id": s.adapter_id, "capacity": capacity,
                                             "open_files": open_files})

    @property
    def port(self) -> int:
        assert self.server is not None
        sock: socket.socket = next(iter(self.server.sockets))
        return int(sock.getsockname()[1])

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Background work whose failure must be logged, never lost silently."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._reap)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for the bookkeeping already started (store writes, takeovers) to finish."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._background and (left := deadline - loop.time()) > 0:
            await asyncio.wait(list(self._background), timeout=left)

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            METRICS.inc(names.ERRORS, Kind="background")
            log.error("background task failed", exc_info=task.exception())

    # ---- sessions --------------------------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection, handshake: Handshake) -> None:
        ctx = self.ctx
        assert ctx is not None
        admitted = handshake.admitted.pop(ws)
        if admitted.version is None or (ws.subprotocol is None and ctx.settings.fallback_version is None):
            log.warning("no common OCPP subprotocol; closing", extra={"charger_id": admitted.charger_id})
            await ws.close(CLOSE_PROTOCOL_ERROR, "no supported OCPP subprotocol")
            return
        cp = admitted.charger_id
        self._newest[cp] = ws
        try:
            state = SessionState(cp, admitted.version, admitted.boot_status)
            previous = ctx.sessions.get(cp)
            if previous is not None:
                log.info("charger reconnected; replacing its old session", extra={"charger_id": cp})
                await previous.close(CLOSE_NORMAL, "replaced by a newer connection")
                await previous.finished.wait()
                state = state.resumed_from(previous.state)
            # While this connection waited, shutdown may have begun (it closes only the sessions it saw) or
            # the charger connected yet again: only the newest connection of a charger gets a session.
            if self._closing.is_set():
                await ws.close(CLOSE_GOING_AWAY, "adapter shutting down")
            elif self._newest[cp] is not ws:
                await ws.close(CLOSE_NORMAL, "replaced by a newer connection")
            else:
                await self._serve(ws, state)
        finally:
            if self._newest.get(cp) is ws:
                del self._newest[cp]

    async def _serve(self, ws: ServerConnection, state: SessionState) -> None:
        ctx = self.ctx
        assert ctx is not None
        cp = state.charger_id
        session = ChargerSession(ws, state, ctx, ctx.bus.link(cp), remote_text(ws))
        ctx.sessions[cp] = session
        METRICS.set_gauge(names.ACTIVE_CONNECTIONS, len(ctx.sessions))
        try:
            await session.run()
        finally:
            if ctx.sessions.get(cp) is session:
                del ctx.sessions[cp]
            METRICS.set_gauge(names.ACTIVE_CONNECTIONS, len(ctx.sessions))

    def _on_lifecycle(self, cp: str, holder: str, data: dict[str, object]) -> None:
        """Another instance now holds this charger: the session here is stale. Or a live instance has declared
        a charger held here lost: the session here says it is connected again."""
        ctx = self.ctx
        session = ctx.sessions.get(cp) if ctx else None
        if session is None:
            return
        if data.get("event") == "disconnected" and data.get("reason") == ADAPTER_LOST:
            session.declared_lost()
            return
        if holder == self.settings.adapter_id or data.get("event") != "connected":
            return
        log.info("charger connected to another adapter; closing stale session",
                 extra={"charger_id": cp, "holder": holder})
        session.taken_over = True
        self.spawn(session.close(CLOSE_NORMAL, f"taken over by {holder}"))

    async def _on_orphan_request(self, topic: str, body: bytes) -> None:
        """Each request also comes here, to exactly one instance: a charger held here gets it (its session
        ignores the copy its own subscription brings too); one no adapter holds gets ``not_connected``."""
        ctx = self.ctx
        parsed = ctx.bus.topics.parse_request(topic) if ctx else None
        if ctx is None or parsed is None:
            return
        cp, namespace, request_id, operation = parsed
        session = ctx.sessions.get(cp)
        if session is not None:  # while closing too: it answers not_connected, once per request
            session.take_request(topic, body)
            return
        holder = ctx.bus.holder_of(cp)
        if holder is not None and holder != self.settings.adapter_id:  # here, only ctx.sessions is the truth
            return
        response = requests.response_body(cp, namespace, request_id, operation, requests.RequestStatus.NOT_CONNECTED,
                                          error={"description": "charger is not connected"})
        await ctx.bus.control.publish(ctx.bus.topics.response(cp, namespace, request_id, operation), response)

    async def _idle_sweeper(self) -> None:
        idle = self.settings.idle_timeout
        if idle <= 0:
            return
        while True:
            await asyncio.sleep(min(idle / 4, 30.0))
            cutoff = time.monotonic() - idle
            assert self.ctx is not None
            for session in list(self.ctx.sessions.values()):
                if session.last_seen < cutoff:
                    log.info("idle session closed", extra={"charger_id": session.charger_id})
                    self.spawn(session.close(CLOSE_NORMAL, "idle timeout"))

    # ---- shutdown --------------------------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop accepting, close every session with 1001 (going away), flush, disconnect."""
        if self._closing.is_set():
            return
        self._closing.set()
        ctx = self.ctx
        if ctx is not None:
            ctx.ready = False
        if self.server is not None:
            self.server.close(close_connections=False)
        if ctx is not None:
            sessions = list(ctx.sessions.values())
            await asyncio.gather(*(s.close(CLOSE_GOING_AWAY, "adapter shutting down") for s in sessions),
                                 return_exceptions=True)
            await asyncio.gather(*(s.finished.wait() for s in sessions))
        if self.server is not None:
            await self.server.wait_closed()
        for task in self._loops:
            task.cancel()
        await self.drain()
        if ctx is not None:
            await ctx.bus.stop()  # each client drains its last lifecycle/shadow publishes first
            await ctx.store.close()


async def run(settings: Settings, *, primary: bool = True, reuse_port: bool = False) -> None:
    adapter = Adapter(settings, primary=primary, reuse_port=reuse_port)
    await adapter.start()
    heap.settle_for_serving()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await adapter.shutdown()
