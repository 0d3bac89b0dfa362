"""MQTT connections for all chargers of this process: one per charger (IoT Core things) or a shared pool.

Also the process-wide parts: lifecycle tracking across adapter instances (with each instance's liveness), the
``not_connected`` answer for requests to chargers nobody holds, and replay of the durable outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import zlib
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from adapter.bus.client import MqttClient, MqttRefused, MqttUnavailable
from adapter.bus.endpoint import MqttEndpoint
from adapter.bus.lifecycle import ADAPTER_LOST, Claim, claim_of, disconnected, lost
from adapter.bus.nodelay import NodelayScheduler, NodelaySetter
from adapter.bus.topic_handlers import MessageHandler
from adapter.bus.topics import Topics
from adapter.observability import names
from adapter.observability.metrics import METRICS
from adapter.ocpp.timestamps import iso
from adapter.security.identity import ADAPTER_CLIENT_PREFIX
from adapter.store.base import OutboxItem

log = logging.getLogger(__name__)

# How long a crashed instance's Will is kept after its last charger has moved on: long enough that every retained
# claim naming it has arrived, even at a start among tens of thousands of retained lifecycle messages.
STATUS_GRACE_S = 300.0
# Sessions of gone instances ended per sweep (two publishes each): on IoT Core the control connection carries
# 100 publishes a second, and its own traffic (not_connected answers, delegation) must not wait behind thousands.
LOST_PER_SWEEP = 500
# A session's topic filters: its requests, and its shadow's delta, get/accepted and update/rejected.
FILTERS_PER_CHARGER = 4
# Outbox items a replay has in flight at once. One at a time, each waited a PUBACK round trip and a store delete:
# tens of items a second on IoT Core and DocumentDB, hours for an outage's backlog.
REPLAY_WINDOW = 50


class MqttMode(enum.StrEnum):
    PER_CHARGER = "per-charger"
    SHARED = "shared"


class Outbox(Protocol):
    """The durable part of the store the bus needs (``AsyncStore`` provides it)."""

    async def outbox_put(self, item: OutboxItem) -> None: ...
    async def outbox_pending(self, limit: int) -> list[OutboxItem]: ...
    async def outbox_delete(self, item_ids: list[str]) -> None: ...


class Link:
    """One charger's view of the bus: its topics, on whichever client carries them."""

    def __init__(self, bus: Bus, charger_id: str, client: MqttClient, owned: bool) -> None:
        self.bus = bus
        self.charger_id = charger_id
        self.client = client
        self._owned = owned
        self._filters: list[str] = []

    async def subscribe(self, handlers: Mapping[str, MessageHandler]) -> None:
        self._filters.extend(handlers)
        await self.client.subscribe(handlers)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> asyncio.Future[None]:
        return self.client.publish(topic, payload, retain=retain)

    def publish_nowait(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Fire-and-forget at QoS 1: failures are counted and logged, never raised into the session."""
        self.client.publish_nowait(topic, payload, _log_failure, retain=retain)

    def publish_durably(self, topic: str, payload: bytes, item_id: str) -> Coroutine[Any, Any, None]:
        """Put the event on the wire now; the returned coroutine ends once it is safe: PUBACKed, or else
        written to the durable outbox. Await several in turn: they are all in flight already."""
        publish = self.publish(topic, payload)
        deadline = self.bus.puback_deadline(publish)
        deadline.add_done_callback(_retrieved)  # a session that ended never awaits it; its outcome is moot
        return self._settle_durably(deadline, publish, topic, payload, item_id)

    async def _settle_durably(self, deadline: asyncio.Future[None], publish: asyncio.Future[None], topic: str,
                              payload: bytes, item_id: str) -> None:
        try:
            await deadline
            return
        except (TimeoutError, MqttUnavailable) as exc:
            if self.bus.outbox is None:
                raise MqttUnavailable(f"no PUBACK for {topic}") from exc
        METRICS.inc(names.OUTBOX_WRITES)
        await self.bus.to_outbox(OutboxItem(item_id, topic, payload, datetime.now(UTC)), publish)

    async def close(self) -> None:
        """An owned client drains its last publishes (lifecycle, shadow, responses) as it stops; a pool client
        drains when the bus stops."""
        if self._owned:
            await self.client.stop()
            return
        try:
            await self.client.unsubscribe(self._filters)
        except Exception:  # the pool connection may be down; its handlers are gone either way
            log.debug("unsubscribe failed", extra={"charger_id": self.charger_id, "topics": self._filters})


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _follow(deadline: asyncio.Future[None], publish: asyncio.Future[None]) -> None:
    if publish.cancelled():
        return
    error = publish.exception()  # retrieved even when the deadline has passed
    if deadline.done():
        return
    if error is None:
        deadline.set_result(None)
    else:
        deadline.set_exception(error)


def _log_failure(error: Exception) -> None:
    METRICS.inc(names.ERRORS, Kind="mqtt_publish")
    log.warning("mqtt publish failed", extra={"error": str(error)})


class Bus:
    def __init__(self, endpoint: MqttEndpoint, *, mode: MqttMode, adapter_id: str, topics: Topics,
                 pool_size: int = 4, outbox: Outbox | None = None, puback_timeout_s: float = 5.0,
                 replay_outbox: bool = True, status_grace_s: float = STATUS_GRACE_S) -> None:
        if any(c in adapter_id for c in "/+#"):  # it names a topic level (the instance's status)
            raise ValueError(f"adapter id {adapter_id!r} may not contain '/', '+' or '#'")
        self.endpoint = endpoint
        self.mode = mode
        self.adapter_id = adapter_id
        self.topics = topics
        self.outbox = outbox
        self.puback_timeout_s = puback_timeout_s
        self.outbox_wakeup = asyncio.Event()
        self._pool_size = pool_size
        self._replay_outbox = replay_outbox
        self._pool: list[MqttClient] = []
        self._control: MqttClient | None = None
        self._holders: dict[str, Claim] = {}  # charger id -> its last connected event's claim
        self._online: set[str] = set()  # adapter ids whose status says online
        # adapter ids whose status says offline (a crash leaves its claims behind) -> when heard, and whether
        # its status is a retained Will that nobody else will clear
        self._gone: dict[str, tuple[float, bool]] = {}
        self.status_grace_s = status_grace_s
        self._replaying = asyncio.Lock()
        self._earlier: dict[str, asyncio.Future[None]] = {}  # outbox item id -> the session's own late publish
        self._written: dict[str, int] = {}  # outbox item id -> replay passes begun when its write completed
        self._refused_items: set[str] = set()  # outbox items the broker refused, reported once
        self._passes = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.nodelay = NodelayScheduler(NodelaySetter(endpoint.host, endpoint.port))
        self._awaiting_puback: deque[tuple[float, asyncio.Future[None]]] = deque()
        self.on_lifecycle: Callable[[str, str, dict[str, object]], None] | None = None
        self.on_orphan_request: Callable[[str, bytes], Coroutine[Any, Any, None]] | None = None

    @property
    def control(self) -> MqttClient:
        assert self._control is not None, "Bus.start() first"
        return self._control

    def status_topic(self, adapter_id: str) -> str:
        """An instance's liveness, in the lifecycle family: two topic levels where a charger id takes one (ids
        hold no '/'), so no charger's topic or the ``+`` lifecycle filter ever meets it."""
        return self.topics.lifecycle_of(f"adapters/{adapter_id}")

    def _own_client_id(self, role: str) -> str:
        """One IoT policy pattern (``adapter-*``) admits every instance's own connections, whatever its id (a
        hostname by default) and the chargers' id prefix; no charger id may take that prefix."""
        return f"{ADAPTER_CLIENT_PREFIX}{self.adapter_id}-{role}"

    def _status(self, status: str, reason: str) -> bytes:
        return orjson.dumps({"adapter_id": self.adapter_id, "status": status, "reason": reason})

    async def start(self, connect_timeout: float = 10.0) -> None:
        # Should this connection die without a DISCONNECT (a crash, a partition), the broker says so for us.
        will = (self.status_topic(self.adapter_id), self._status("offline", "connection lost"))
        self._control = MqttClient(self.endpoint, self._own_client_id("control"), on_connected=self._control_connected,
                                   will=will)
        self._control.start()
        if self.mode is MqttMode.SHARED:
            if self.endpoint.is_iot_core:
                log.warning("shared MQTT mode on AWS IoT Core: each connection may publish 100 messages a second "
                            "and hold 50 subscriptions (%d per charger), so this process's pool carries at most "
                            "%d msg/s and %d chargers; per-charger mode has no such ceiling",
                            FILTERS_PER_CHARGER, 100 * self._pool_size,
                            50 // FILTERS_PER_CHARGER * self._pool_size)
            self._pool = [MqttClient(self.endpoint, self._own_client_id(str(i)), on_connected=self.nodelay.request)
                          for i in range(self._pool_size)]
            for client in self._pool:
                client.start()
        await self._control.wait_connected(connect_timeout)
        await self._control.subscribe({self.topics.lifecycle_filter(): self._on_lifecycle,
                                       self.status_topic("+"): self._on_status,
                                       f"$share/ocpp-adapter/{self.topics.all_requests()}": self._on_any_request})
        self._tasks.append(asyncio.create_task(self._expire_loop()))
        self._tasks.append(asyncio.create_task(self._sweep_loop()))
        if self.outbox is not None and self._replay_outbox:
            self._tasks.append(asyncio.create_task(self._replay_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*(client.stop() for client in self._pool))
        if self._control is not None:  # last: it carries the local shadow's replies to the pool's last reports
            # Drained as the control stops; if the link is down, the broker has published the Will instead.
            # Running instances hear "offline"; the retained status is then cleared, since the sessions have
            # published their chargers' "disconnected" already: ids like <hostname>-<pid> are new on every
            # start, and a retained status per stopped instance would pile up on the broker forever.
            topic = self.status_topic(self.adapter_id)
            self._control.publish(topic, self._status("offline", "stopped")).add_done_callback(_retrieved)
            self._control.publish(topic, b"", retain=True).add_done_callback(_retrieved)
            await self._control.stop()

    def _control_connected(self) -> None:
        """After every (re)connection: the Will may have said offline while the link was down. Who is online is
        learnt again from the retained statuses the restored subscription brings: a clear missed meanwhile would
        leave a stopped instance counted online for good, and if its id were the least, nobody would speak for
        a crashed one."""
        self._online.clear()
        self.nodelay.request()
        self.control.publish_nowait(self.status_topic(self.adapter_id), self._status("online", "connected"),
                                    _log_failure, retain=True)

    def link(self, charger_id: str) -> Link:
        if self.mode is MqttMode.PER_CHARGER:
            client = MqttClient(self.endpoint, charger_id, on_connected=self.nodelay.request)
            client.start()
            return Link(self, charger_id, client, owned=True)
        client = self._pool[zlib.crc32(charger_id.encode()) % len(self._pool)]
        return Link(self, charger_id, client, owned=False)

    def puback_deadline(self, publish: asyncio.Future[None]) -> asyncio.Future[None]:
        """``publish``'s outcome, or TimeoutError if no PUBACK settles it within ``puback_timeout_s``.
        ``publish`` itself goes on to its real outcome, which the outbox replay waits for."""
        loop = publish.get_loop()
        deadline: asyncio.Future[None] = loop.create_future()
        publish.add_done_callback(functools.partial(_follow, deadline))
        self._awaiting_puback.append((loop.time() + self.puback_timeout_s, deadline))
        return deadline

    async def _expire_loop(self) -> None:
        """One timer for every PUBACK deadline instead of one per message (measurable at thousands per second):
        all deadlines are the same distance ahead, so they expire in the order they were set. A deadline
        fires up to one tick late."""
        loop = asyncio.get_running_loop()
        awaiting = self._awaiting_puback
        tick = min(0.25, self.puback_timeout_s / 4)
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            while awaiting and (awaiting[0][1].done() or awaiting[0][0] <= now):
                _, future = awaiting.popleft()
                if not future.done():
                    future.set_exception(TimeoutError(f"no PUBACK within {self.puback_timeout_s:g} s"))

    def holder_of(self, charger_id: str) -> str | None:
        """The instance holding the charger by its last lifecycle event, unless that instance is gone."""
        claim = self._holders.get(charger_id)
        return None if claim is None or claim.holder in self._gone else claim.holder

    def _on_lifecycle(self, topic: str, payload: bytes) -> None:
        try:
            event = orjson.loads(payload)
            cp, data, holder = event["charger_id"], event["data"], event["adapter_id"]
            claim = claim_of(event) if data.get("event") == "connected" else None
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            if payload:  # empty: a retained lifecycle being cleared
                log.warning("ignoring malformed lifecycle event", extra={"topic": topic})
            return
        if claim is not None:
            self._holders[cp] = claim
        elif (known := self._holders.get(cp)) is not None and known.holder == holder:
            del self._holders[cp]
        if self.on_lifecycle is not None:
            self.on_lifecycle(cp, holder, data)

    def _on_status(self, topic: str, payload: bytes) -> None:
        if not payload:  # a retained status cleared: a stopped instance, or a crash's Will swept
            head, _, tail = self.status_topic("\0").partition("\0")
            self._online.discard(topic[len(head):len(topic) - len(tail)])
            return
        try:
            status = orjson.loads(payload)
            adapter_id, online = status["adapter_id"], status["status"] == "online"
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring malformed adapter status", extra={"topic": topic})
            return
        if online:
            self._online.add(adapter_id)
            self._gone.pop(adapter_id, None)
            return
        self._online.discard(adapter_id)
        if adapter_id not in self._gone:
            self._gone[adapter_id] = (asyncio.get_running_loop().time(), status.get("reason") != "stopped")

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, self.status_grace_s / 4))
            self.sweep_statuses()

    def sweep_statuses(self) -> None:
        """Forget instances that went offline a grace period ago and hold no charger any more; clear the
        retained Will a crash left, which would otherwise stay on the broker for good (ids are new on every
        start). While a charger's last claim still names the instance, the Will stays: it is what tells every
        instance, and every one started later, that nobody holds that charger. Each instance clears the same
        Will (an idempotent empty retained publish); clearing one that has just said online again is harmless,
        since an instance without a status counts as live.

        Chargers that have not come back by then get their lost session ended in the gone instance's name (see
        ``_end_lost_sessions``; at most ``LOST_PER_SWEEP`` a sweep), so the Will goes at the sweep after the last."""
        now = asyncio.get_running_loop().time()
        budget = LOST_PER_SWEEP
        held: dict[str, list[tuple[str, Claim]]] = {}
        for cp, claim in self._holders.items():
            held.setdefault(claim.holder, []).append((cp, claim))
        for adapter_id, (heard, retained) in list(self._gone.items()):
            if heard + self.status_grace_s > now or adapter_id == self.adapter_id:
                continue
            if adapter_id in held:
                if self._speaks_for_the_gone() and budget > 0:
                    gone_at = iso(datetime.now(UTC) - timedelta(seconds=now - heard))
                    budget -= self._end_lost_sessions(held[adapter_id][:budget], gone_at)
                continue
            del self._gone[adapter_id]
            if retained:
                log.info("clearing the status of an instance that went offline", extra={"adapter": adapter_id})
                self.control.publish_nowait(self.status_topic(adapter_id), b"", _log_failure, retain=True)

    def _speaks_for_the_gone(self) -> bool:
        """One live instance speaks (the least id it knows online), so a fleet does not repeat every event."""
        return self.adapter_id == min(self._online | {self.adapter_id})

    def _end_lost_sessions(self, sessions: list[tuple[str, Claim]], since: str) -> int:
        """A charger still claimed by a gone instance a grace period later is not connected: its retained
        lifecycle and shadow said ``connected`` for good, so dashboards showed it online while nobody held it. A
        session alive after all (its instance was only cut off) says ``connected`` again when it hears this."""
        log.info("ending the sessions of an instance that went offline",
                 extra={"adapter": sessions[0][1].holder, "chargers": len(sessions)})
        for cp, claim in sessions:
            del self._holders[cp]  # not spoken for again at the next sweep, and the Will may then go
            self.control.publish_nowait(self.topics.lifecycle_of(cp), lost(cp, claim, since), _log_failure,
                                        retain=True)
            report = {"state": {"reported": {"connection": disconnected(ADAPTER_LOST, None, since)}}}
            self.control.publish_nowait(self.topics.shadow_update(cp), orjson.dumps(report), _log_failure)
        return len(sessions)

    def _on_any_request(self, topic: str, payload: bytes) -> None:
        if self.on_orphan_request is not None:
            task: asyncio.Task[None] = asyncio.create_task(self.on_orphan_request(topic, payload))
            self._tasks.append(task)
            task.add_done_callback(self._tasks.remove)

    async def _replay_loop(self) -> None:
        """Runs for the life of the bus: a pass that fails is tried again a second later, whatever failed. A
        store error (a replica set failover, a locked database) used to end this task, and with it every
        replay until the process restarted."""
        self.outbox_wakeup.set()  # leftovers from a previous run
        store_failing = False
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30.0):
                    await self.outbox_wakeup.wait()
            self.outbox_wakeup.clear()
            try:
                await self.replay_outbox()
                store_failing = False
                continue
            except MqttUnavailable:  # not PUBACKed within awscrt's ack timeout while connected
                pass
            except Exception:
                if not store_failing:  # once per episode: a store that is down fails every second
                    METRICS.inc(names.ERRORS, Kind="outbox_replay")
                    log.warning("outbox replay failed; trying again every second", exc_info=True)
                store_failing = True
            await asyncio.sleep(1.0)
            self.outbox_wakeup.set()

    async def to_outbox(self, item: OutboxItem, publish: asyncio.Future[None]) -> None:
        """Write an event whose PUBACK is late. Its ``publish`` may still reach the broker (awscrt queues it
        while disconnected): the replay here waits for that outcome rather than send a second copy."""
        assert self.outbox is not None
        if self._replay_outbox:
            self._earlier[item.item_id] = publish  # before the write: the replay may read the item at once
        try:
            await self.outbox.outbox_put(item)
        except BaseException:
            self._earlier.pop(item.item_id, None)
            raise
        if item.item_id in self._earlier:
            self._written[item.item_id] = self._passes
        self.outbox_wakeup.set()

    async def replay_outbox(self) -> int:
        """Publish pending outbox items in order, ``REPLAY_WINDOW`` at a time; delete those PUBACKed. Returns how
        many were sent.

        One replay at a time, and one publish of an item in flight at a time: a publish is made once connected
        and then awaited however long an outage lasts (awscrt keeps the window's publishes and sends them again,
        in order, after a reconnect), so copies never pile up in awscrt's offline queue; a new one follows only
        when the last one failed. A failure other than a refusal ends the pass after its window: an item whose
        PUBACK timed out while connected may then reach the broker after those behind it in its window."""
        assert self.outbox is not None
        sent = 0
        async with self._replaying:
            self._passes += 1
            began = self._passes
            skipped: set[str] = set()  # refused: the rest must not wait behind them
            while True:
                pending = await self.outbox.outbox_pending(100 + len(skipped))
                items = [item for item in pending if item.item_id not in skipped]
                if not items:
                    self._forget_replayed_elsewhere(began)
                    self._refused_items &= skipped  # the others went out, or another instance took them
                    return sent
                for start in range(0, len(items), REPLAY_WINDOW):
                    sent += await self._replay_window(items[start:start + REPLAY_WINDOW], skipped)

    async def _replay_window(self, window: list[OutboxItem], skipped: set[str]) -> int:
        """Hand off every item (publishes go out in order), delete those PUBACKed in one store call, then raise
        the first failure that was not a refusal."""
        assert self.outbox is not None
        outcomes = await asyncio.gather(*(self._hand_off(item) for item in window), return_exceptions=True)
        done: list[str] = []
        failure: BaseException | None = None
        for item, outcome in zip(window, outcomes, strict=True):
            if outcome is None:
                done.append(item.item_id)
            elif isinstance(outcome, MqttRefused):
                skipped.add(item.item_id)
                self._refused_item(item, outcome)
            elif failure is None:
                failure = outcome
        if done:
            await self.outbox.outbox_delete(done)
        if failure is not None:
            raise failure
        return len(done)

    def _refused_item(self, item: OutboxItem, exc: MqttRefused) -> None:
        """An item the broker refuses (not authorized, too large) stays in the outbox, tried again each pass,
        and is reported once; replaying in order stopped at it, and every billing event after it waited."""
        if item.item_id in self._refused_items:
            return
        self._refused_items.add(item.item_id)
        METRICS.inc(names.ERRORS, Kind="outbox_refused")
        log.error("outbox item refused by the broker; kept, and the replay goes on without it",
                  extra={"item_id": item.item_id, "topic": item.topic, "error": str(exc)})

    def _forget_replayed_elsewhere(self, began: int) -> None:
        """Items written before this pass began that it never met: another instance sharing the outbox replayed
        and deleted them. Their entries would otherwise stay for the life of the process."""
        for item_id in [i for i, written in self._written.items() if written < began]:
            del self._written[item_id]
            self._earlier.pop(item_id, None)

    async def _hand_off(self, item: OutboxItem) -> None:
        self._written.pop(item.item_id, None)
        earlier = self._earlier.pop(item.item_id, None)
        if earlier is not None:
            with contextlib.suppress(MqttUnavailable):  # failed: it never got to the broker
                await earlier
                return
        await self.control.wait_connected(None)
        await self.control.publish(item.topic, item.payload)
