"""One simulated charger: connect, boot, report, charge, answer the central system, reconnect.

Everything a charger does runs in a single asyncio task. Timers are deadlines the task sleeps until while
pumping its socket (see protocol.py); requests from the central system only change state and queue follow-up
actions (a remote start, a triggered message, a reset), which the task runs when the handler returns.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

from simulator import profiles
from simulator.config import Configuration
from simulator.model import (
    AVAILABLE,
    CHARGING,
    DEAUTHORIZED,
    EV_DISCONNECTED,
    FAULTED,
    FINISHING,
    HARD_RESET,
    MARKER_MEASURAND,
    ONGOING_TRANSACTION,
    PREPARING,
    REMOTE,
    SOFT_RESET,
    UNAVAILABLE,
    UNKNOWN_CONNECTOR,
    UNLOCK_COMMAND,
    UNLOCKED,
    ChargerSpec,
    Connector,
    Dialect,
    FleetContext,
    Message,
    Payload,
    Sample,
    Transaction,
)
from simulator.protocol import CallFailed, CallTimeout, OcppLink
from simulator.v2 import V2
from simulator.v16 import V16

FAULT_CODES = ("GroundFailure", "OverCurrentFailure", "HighTemperature", "PowerMeterFailure")
ENERGY = "Energy.Active.Import.Register"

Action = Callable[[OcppLink], Awaitable[None]]


def dialect_for(version: str) -> Dialect:
    return V16() if version == "1.6" else V2(version)


class _Reboot(Exception):
    """A reset was accepted: end the session, wait, boot again."""


class Charger:
    """State and behaviour of one charger; `run` is its only task."""

    def __init__(self, spec: ChargerSpec, ctx: FleetContext, rng: random.Random) -> None:
        self.spec = spec
        self.ctx = ctx
        self.behaviour = ctx.behaviour
        self.stats = ctx.stats
        self.rng = rng
        self.dialect = dialect_for(spec.version)
        self.connectors = [Connector(i, energy_wh=float(rng.randrange(1_000_000)))
                           for i in range(1, spec.connectors + 1)]
        self.config = Configuration({"NumberOfConnectors": str(spec.connectors),
                                     "MeterValueSampleInterval": str(self.behaviour.meter_interval_s)})
        self.profiles: list[profiles.Profile] = []
        self.start_profiles: dict[int, profiles.Profile] = {}  # from remote starts, bound when tx starts
        self.actions: deque[Action] = deque()
        self.ws: ClientConnection | None = None
        self.link: OcppLink | None = None
        self.heartbeat_interval = self.config.number("HeartbeatInterval")
        self.heartbeat_at = math.inf
        self.boot_reason = "PowerUp"
        self.failures = 0  # consecutive connection failures, for the backoff
        self.ever_connected = False
        self.accepted_once = False
        self.storm_seen = 0
        self.dropped = False
        self.pending_reset = False

    # -- connection lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected until cancelled, reconnecting with exponential backoff and full jitter."""
        while True:
            ws = await self._connect()
            rebooting = False
            if ws is not None:
                try:
                    rebooting = await self._session(ws)
                finally:
                    await ws.close()
            if rebooting:
                await asyncio.sleep(self.behaviour.reboot_s)
                continue
            self.failures += 1
            b = self.behaviour
            ceiling = min(b.backoff_cap_s, b.backoff_base_s * 2 ** (self.failures - 1))
            await asyncio.sleep(self.rng.uniform(0, ceiling))

    def drop(self) -> None:
        """Cut the connection abruptly, as a network failure would (reconnect storms)."""
        if self.ws is not None:
            self.dropped = True
            self.ws.transport.abort()

    async def _connect(self) -> ClientConnection | None:
        b = self.behaviour
        extra: dict[str, Any] = {}
        if self.spec.source_address is not None:
            extra["local_addr"] = (self.spec.source_address, 0)
        try:
            ws = await connect(
                f"{self.ctx.url}/{self.spec.charger_id}",
                subprotocols=[Subprotocol(self.dialect.subprotocol)],
                compression=None, max_queue=4, proxy=None, user_agent_header=None,
                open_timeout=b.call_timeout_s, close_timeout=2,
                ping_interval=b.ws_ping_interval_s, ping_timeout=b.ws_ping_interval_s,
                **extra,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:  # the kind says why: timeout, refused, 503...
            self.stats.error(f"connect_failed: {_connect_failure(exc)}")
            return None
        if ws.subprotocol != self.dialect.subprotocol:
            self.stats.error("subprotocol_refused")
            await ws.close()
            return None
        return ws

    async def _session(self, ws: ClientConnection) -> bool:
        """One connection's life; True when it ended because the charger is rebooting."""
        self.ws = ws
        self.stats.on_connect()
        if self.ever_connected:
            self.stats.reconnects += 1
        self.ever_connected = True
        link = self.link = OcppLink(ws, self._handle, self.stats, self.behaviour.call_timeout_s,
                                    self.dialect.format_violation)
        try:
            await self._boot(link)
            await self._online(link)
        except _Reboot:
            return True
        except ConnectionClosed:
            self._count_disconnect()
        finally:
            self.ws = self.link = None
            self.stats.connected -= 1
        return False

    def _count_disconnect(self) -> None:
        if self.dropped or self.ctx.storm.generation != self.storm_seen:
            self.stats.storm_disconnects += 1
        else:
            self.stats.disconnects += 1
            self.stats.error("disconnected")
        self.dropped = False

    def _accepted(self) -> None:
        now = time.time()
        self.failures = 0
        if not self.accepted_once:
            self.accepted_once = True
            self.stats.accepted += 1
            self.stats.last_first_accept = max(self.stats.last_first_accept, now)
        storm = self.ctx.storm
        if storm.generation != self.storm_seen and now >= storm.at:
            self.storm_seen = storm.generation
            self.stats.accepted_after_storm += 1
            self.stats.last_storm_accept = max(self.stats.last_storm_accept, now)

    # -- the session --------------------------------------------------------------------------------------

    async def _call(self, link: OcppLink, message: Message) -> Payload | None:
        try:
            return await link.call(*message)
        except (CallTimeout, CallFailed):
            return None

    async def _boot(self, link: OcppLink) -> None:
        loop = asyncio.get_running_loop()
        while True:
            response = await self._call(link, self.dialect.boot(self, self.boot_reason)) or {}
            interval = int(response.get("interval", 0))
            if response.get("status") == "Accepted":
                if interval > 0:
                    self.heartbeat_interval = interval
                    self.config.values["HeartbeatInterval"] = str(interval)
                break
            # Pending or Rejected (or no answer): wait, unless the server triggers a BootNotification.
            deadline = loop.time() + (interval or self.behaviour.boot_retry_s)
            self.actions.clear()
            while loop.time() < deadline and not self.actions:
                await link.pump_until(deadline)
        self.actions.clear()
        self.boot_reason = "PowerUp"
        self._accepted()

    async def _online(self, link: OcppLink) -> None:
        loop = asyncio.get_running_loop()
        for c in self.connectors:
            c.reported = None
            await self._report(link, c)
        now = loop.time()
        self.heartbeat_at = now + self.heartbeat_interval * self.rng.uniform(0.5, 1.0)
        for c in self.connectors:
            if c.tx is None and c.status == AVAILABLE and c.next_event == math.inf:
                c.next_event = now + self._idle_time()
        while True:
            while self.actions:
                await self.actions.popleft()(link)
            wake = await self._tick(link, loop)
            if not self.actions:
                await link.pump_until(wake)

    async def _tick(self, link: OcppLink, loop: asyncio.AbstractEventLoop) -> float:
        """Do what is due; return the loop time of the next thing to do."""
        if loop.time() >= self.heartbeat_at:
            self.heartbeat_at = loop.time() + self.heartbeat_interval
            await self._call(link, ("Heartbeat", {}))
        wake = self.heartbeat_at
        for c in self.connectors:
            if loop.time() >= c.next_event:
                await self._connector_event(link, c, loop)
            if c.tx is not None and loop.time() >= c.meter_at:
                c.meter_at = loop.time() + self._meter_interval()
                await self._call(link, self.dialect.meter(self, c, "Sample.Periodic"))
            wake = min(wake, c.next_event, c.meter_at)
        return wake

    async def _connector_event(self, link: OcppLink, c: Connector, loop: asyncio.AbstractEventLoop) -> None:
        """The scheduled event of a connector: the driver leaves, plugs in, or a fault clears."""
        if c.tx is not None:
            await self._stop(link, c, EV_DISCONNECTED)
        elif c.status == FAULTED:
            c.status, c.error_code = (AVAILABLE if c.operative else UNAVAILABLE), "NoError"
            c.next_event = loop.time() + self._idle_time() if c.operative else math.inf
            await self._report(link, c)
        elif c.status == AVAILABLE and c.operative and self.rng.random() < self.behaviour.fault_probability:
            c.status, c.error_code = FAULTED, self.rng.choice(FAULT_CODES)
            c.next_event = loop.time() + self.behaviour.fault_duration_s
            await self._report(link, c)
        elif c.status == AVAILABLE and c.operative:
            await self._start(link, c, f"TAG{self.rng.randrange(100_000):05d}", None, remote=False)
        else:
            c.next_event = math.inf

    async def _report(self, link: OcppLink, c: Connector) -> None:
        message = self.dialect.status(self, c)
        if message is not None:
            await self._call(link, message)

    async def _start(self, link: OcppLink, c: Connector, id_tag: str, remote_start_id: int | None,
                     remote: bool) -> None:
        loop = asyncio.get_running_loop()
        c.next_event = math.inf
        if c.tx is not None or not c.operative:
            return
        c.status = PREPARING
        await self._report(link, c)
        if not remote or self.config.get("AuthorizeRemoteTxRequests") == "true":
            response = await self._call(link, self.dialect.authorize(id_tag))
            if response is None or not self.dialect.authorized(response):
                await self._finish(link, c)
                return
        self._advance_meter(c)
        tx = Transaction(id=f"{self.rng.getrandbits(64):016x}", id_tag=id_tag,
                         meter_start_wh=int(c.energy_wh), started_at=time.time(),
                         remote_start_id=remote_start_id)
        c.tx = tx
        response = await self._call(link, self.dialect.tx_start(self, c, tx))
        if response is None:
            c.tx = None
            await self._finish(link, c)
            return
        profile = self.start_profiles.pop(c.id, None)
        if profile is not None:
            bound = replace(profile, connector=c.id, transaction_id=tx.id)
            self.profiles = profiles.install(self.profiles, bound)
        if not self.dialect.tx_started(tx, response):
            await self._stop(link, c, DEAUTHORIZED)
            return
        self._advance_meter(c)
        c.status = CHARGING
        await self._report(link, c)
        interval = self._meter_interval()
        # Throughput runs start every session at once; a random phase spreads their meter values.
        c.meter_at = loop.time() + (interval * self.rng.random() if self.ctx.rate_plan else interval)
        c.next_event = loop.time() + self.rng.expovariate(1.0 / self.behaviour.session_mean_s)

    async def _stop(self, link: OcppLink, c: Connector, reason: str) -> None:
        tx = c.tx
        if tx is None:
            return
        self._advance_meter(c)
        await self._call(link, self.dialect.tx_stop(self, c, tx, reason))
        c.tx = None
        c.meter_at = math.inf
        c.current_a = 0.0
        self.profiles = profiles.drop_transaction(self.profiles, tx.id)
        await self._finish(link, c)

    async def _finish(self, link: OcppLink, c: Connector) -> None:
        """The cable comes out: Finishing, then free (or unavailable if that was scheduled)."""
        c.status = FINISHING
        await self._report(link, c)
        if c.inoperative_after_tx:
            c.operative, c.inoperative_after_tx = False, False
        c.status = AVAILABLE if c.operative else UNAVAILABLE
        await self._report(link, c)
        c.next_event = asyncio.get_running_loop().time() + self._idle_time() if c.operative else math.inf
        if self.pending_reset and all(x.tx is None for x in self.connectors):
            self.pending_reset = False
            self.actions.append(lambda link: self._reboot(link, hard=True))

    async def _reboot(self, link: OcppLink, hard: bool) -> None:
        for c in self.connectors:
            await self._stop(link, c, HARD_RESET if hard else SOFT_RESET)
        self.boot_reason = "RemoteReset"
        raise _Reboot

    async def _send(self, link: OcppLink, messages: list[Message]) -> None:
        for message in messages:
            await self._call(link, message)

    def _idle_time(self) -> float:
        mean = self.behaviour.idle_mean_s
        return self.rng.expovariate(1.0 / mean) if mean > 0 else 0.0

    def _meter_interval(self, at: float | None = None) -> float:
        """Seconds between periodic meter values: the rate plan's at that wall time, else configured."""
        now = time.time() if at is None else at
        interval: float | None = None
        for start, stage_interval in self.ctx.rate_plan:
            if now >= start:
                interval = stage_interval
        if interval is None:
            interval = self.config.number("MeterValueSampleInterval")
        return interval if interval > 0 else math.inf

    # -- the meter ----------------------------------------------------------------------------------------

    def _advance_meter(self, c: Connector) -> None:
        """Accumulate energy at the current draw, then set the draw the active profiles allow now."""
        b = self.behaviour
        now = time.time()
        if c.tx is not None:
            c.energy_wh += c.current_a * b.volts * b.phases * (now - c.metered_at) / 3600.0
            limit = profiles.limit_amps(self.profiles, c.id, c.tx.id, c.tx.started_at, now, b.volts, b.phases)
            c.current_a = b.ev_max_current_a if limit is None else max(0.0, min(b.ev_max_current_a, limit))
        else:
            c.current_a = 0.0
        c.metered_at = now

    def samples(self, connector: Connector, context: str) -> list[Sample]:
        b = self.behaviour
        self._advance_meter(connector)
        current = round(connector.current_a, 1)
        out = [
            Sample(ENERGY, float(round(connector.energy_wh)), "Wh", context),
            Sample("Power.Active.Import", round(current * b.volts * b.phases, 1), "W", context),
            Sample("Current.Import", current, "A", context),
            Sample("Voltage", b.volts, "V", context),
        ]
        if b.marker_epoch is not None and context == "Sample.Periodic":
            sent_us = float(int((time.time() - b.marker_epoch) * 1e6))
            out.append(Sample(MARKER_MEASURAND, sent_us, "Wh", context))
        return out

    # -- requests from the central system (Station) -------------------------------------------------------

    def _handle(self, action: str, payload: Payload) -> Payload:
        return self.dialect.handle(self, action, payload)

    def connector(self, connector_id: int) -> Connector | None:
        return self.connectors[connector_id - 1] if 1 <= connector_id <= len(self.connectors) else None

    def remote_start(self, connector_id: int | None, id_tag: str, remote_start_id: int | None,
                     profile: profiles.Profile | None) -> Connector | None:
        if profile is not None and profile.purpose != profiles.TX:
            return None
        free = [c for c in self.connectors if connector_id in (None, c.id)
                and c.tx is None and c.operative and c.status == AVAILABLE]
        if not free:
            return None
        c = free[0]
        c.next_event = math.inf  # the remote start replaces the next local plug-in
        if profile is not None:
            self.start_profiles[c.id] = profile
        self.actions.append(lambda link: self._start(link, c, id_tag, remote_start_id, remote=True))
        return c

    def _queue_stop(self, c: Connector, reason: str) -> None:
        self.actions.append(lambda link: self._stop(link, c, reason))

    def _queue_report(self, c: Connector) -> None:
        self.actions.append(lambda link: self._report(link, c))

    def remote_stop(self, transaction_id: str) -> bool:
        for c in self.connectors:
            if c.tx is not None and c.tx.id == transaction_id:
                self._queue_stop(c, REMOTE)
                return True
        return False

    def reset(self, hard: bool, when_idle: bool) -> bool:
        if when_idle and any(c.tx is not None for c in self.connectors):
            self.pending_reset = True
            return False
        self.actions.append(lambda link: self._reboot(link, hard))
        return True

    def trigger(self, message: str, connector_id: int | None) -> None:
        self.actions.append(
            lambda link: self._send(link, self.dialect.triggered(self, message, connector_id)))

    def add_profile(self, profile: profiles.Profile) -> bool:
        if profile.purpose == profiles.TX:
            c = self.connector(profile.connector)
            if c is None or c.tx is None or profile.transaction_id not in (None, c.tx.id):
                return False
            profile = replace(profile, transaction_id=c.tx.id)
        self._recharge(lambda: profiles.install(self.profiles, profile))
        return True

    def clear_profiles(self, profile_id: int | None, connector: int | None, purpose: str | None,
                       stack_level: int | None) -> int:
        removed = 0

        def remaining() -> list[profiles.Profile]:
            nonlocal removed
            kept, removed = profiles.clear(self.profiles, profile_id, connector, purpose, stack_level)
            return kept

        self._recharge(remaining)
        return removed

    def _recharge(self, change: Callable[[], list[profiles.Profile]]) -> None:
        """Change the profiles at a meter boundary, so energy so far is counted at the old draw."""
        for c in self.connectors:
            self._advance_meter(c)
        self.profiles = change()
        for c in self.connectors:
            self._advance_meter(c)

    def change_availability(self, connector_id: int | None, operative: bool) -> str:
        chosen = [c for c in self.connectors if connector_id in (None, c.id)]
        if not chosen:
            return "Rejected"
        scheduled = False
        now = asyncio.get_running_loop().time()
        for c in chosen:
            if not operative and c.tx is not None:
                c.inoperative_after_tx = scheduled = True
                continue
            c.operative, c.inoperative_after_tx = operative, False
            wanted = AVAILABLE if operative else UNAVAILABLE
            if c.status in (AVAILABLE, UNAVAILABLE) and c.status != wanted:
                c.status = wanted
                c.next_event = now + self._idle_time() if operative else math.inf
                self._queue_report(c)
        return "Scheduled" if scheduled else "Accepted"

    def unlock(self, connector_id: int, end_transaction: bool) -> str:
        c = self.connector(connector_id)
        if c is None:
            return UNKNOWN_CONNECTOR
        if c.tx is not None:
            if not end_transaction:
                return ONGOING_TRANSACTION
            self._queue_stop(c, UNLOCK_COMMAND)
        return UNLOCKED

    def rephase_meters(self) -> None:
        """A new meter interval takes effect now, at a random phase so chargers do not send in step."""
        now, wall = asyncio.get_running_loop().time(), time.time()
        begins = max([wall, *(start for start, _ in self.ctx.rate_plan[:1])])
        for c in self.connectors:
            if c.tx is not None:
                c.meter_at = now + (begins - wall) + self._meter_interval(begins) * self.rng.random()
                if self.link is not None:
                    self.link.hurry(c.meter_at)

    def configured(self, name: str) -> None:
        """Apply a configuration change that alters timing right away."""
        now = asyncio.get_running_loop().time()
        if name == "HeartbeatInterval":
            self.heartbeat_interval = max(1, self.config.number(name))
            self.heartbeat_at = now + self.heartbeat_interval
        elif name == "MeterValueSampleInterval":
            for c in self.connectors:
                if c.tx is not None:
                    c.meter_at = now + self._meter_interval()


def _connect_failure(exc: Exception) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"HTTP {status}" if status is not None else type(exc).__name__
