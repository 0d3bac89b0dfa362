"""One connected charger: reads its socket, answers its calls in order, runs back-end requests one at a time.

Reading never waits on handling: results resolve the outstanding CALL at once, charger CALLs queue for the
call worker, back-end requests queue for the request worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from adapter.bus.bus import Link
from adapter.bus.envelope import Origin, encode, envelope
from adapter.bus.lifecycle import disconnected, lifecycle_event
from adapter.csms.central_system import SessionState
from adapter.normalize.canonical import normalize
from adapter.normalize.events import EventDraft
from adapter.normalize.transactions import OpenTransaction, continued_transaction
from adapter.observability import names
from adapter.observability.metrics import METRICS
from adapter.ocpp.connection import (
    IncomingCall,
    IncomingError,
    IncomingResult,
    OcppConnection,
    Rejected,
    Unmatched,
)
from adapter.ocpp.errors import ErrorKind, OcppError
from adapter.ocpp.frames import Call, dumps
from adapter.ocpp.timestamps import now_iso, parse_timestamp
from adapter.security import password_change
from adapter.security.passwords import hash_password
from adapter.server import requests
from adapter.server.context import AdapterContext
from adapter.server.requests import BackendRequest, RequestStatus
from adapter.server.shadow import ShadowReporter
from adapter.store.base import AuditEntry, ConnectionRecord, TransactionRecord, transaction_key

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_NORMAL = 1000
# A request reaches the session by two subscriptions, moments apart: this many recent ones are recognized.
_REMEMBERED_REQUESTS = 64


@dataclass(slots=True)
class _Queued:
    call: IncomingCall
    raw: str | bytes
    received_at: str
    started: float


class ChargerSession:
    def __init__(self, ws: ServerConnection, state: SessionState, ctx: AdapterContext, link: Link,
                 remote: str | None) -> None:
        self.ws = ws
        self.charger_id = charger_id = state.charger_id
        self.version = version = state.version
        self.ctx = ctx
        self.link = link
        self.remote = remote
        self.session_id = uuid.uuid4().hex
        self.started_at = datetime.now(UTC)
        self.last_seen = time.monotonic()
        self.conn = OcppConnection(version, strict=ctx.settings.strict)
        self.state = state
        self.shadow = ShadowReporter(link, ctx.bus.topics.shadow_update(charger_id), self.session_id)
        self._calls: asyncio.Queue[_Queued] = asyncio.Queue()
        self._requests: asyncio.Queue[BackendRequest] = asyncio.Queue(ctx.settings.request_queue_limit)
        self._pending: asyncio.Future[IncomingResult | IncomingError] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._audit = ctx.settings.audit_log
        self._desired_requested = False
        self._announced = False
        self._taken: dict[tuple[str, str, str], None] = {}  # the latest requests taken, oldest first
        self.closing = False
        self.taken_over = False  # closed because another adapter instance now holds the charger
        self._log_extra = {"charger_id": charger_id, "session_id": self.session_id}
        self.finished = asyncio.Event()

    # ---- lifecycle -------------------------------------------------------------------------------------------
    async def run(self) -> None:
        topics = self.ctx.bus.topics
        self.ctx.spawn(self.ctx.store.record_connection(ConnectionRecord(
            self.session_id, self.charger_id, self.started_at, self.remote, self.version.value,
            self.ctx.adapter_id)))
        try:
            await self.link.subscribe({topics.requests_of(self.charger_id): self._on_request_message,
                                       topics.shadow_delta(self.charger_id): self.shadow.on_delta(self),
                                       topics.shadow_update_rejected(self.charger_id): self.shadow.reports.on_rejected,
                                       topics.shadow_get_accepted(self.charger_id): self.shadow.on_document(self)})
            self._tasks = [asyncio.create_task(self._call_worker()), asyncio.create_task(self._request_worker()),
                           asyncio.create_task(self._announce())]
            await self._read_loop()
        finally:
            await self._finish()

    async def _announce(self) -> None:
        """Tell the back end the charger is here once requests can reach this session. Until a per-charger
        client has its SUBACK, a request would reach only the shared orphan subscription, and a shadow
        document asked for then would be missed. Reading the charger does not wait for this."""
        await self.link.client.wait_connected(None)
        self._announced = True
        self._say_connected()
        self._catch_up_desired()

    def _say_connected(self, occasion: str = "") -> None:
        self._lifecycle("connected", "connected", None, occasion=occasion)
        self.shadow.report({"connection": {"state": "connected", "ocpp_version": self.version.value,
                                           "adapter_id": self.ctx.adapter_id, "since": now_iso(),
                                           "remote_address": self.remote}})

    def declared_lost(self) -> None:
        """A live instance ended a session of this charger for the record, its holder seeming gone (this instance
        was cut off from the broker, or the charger came here just then): it is here, so say so again, under a
        new event id that consumers' de-duplication will not drop."""
        if self._announced and not self.closing:
            log.info("charger declared lost elsewhere; announcing it again", extra=self._log_extra)
            self._say_connected(f"/{now_iso()}")

    async def _finish(self) -> None:
        self.closing = True  # from here a request is answered not_connected at once, never queued unserved
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_queued_requests()
        code, reason = self.ws.close_code, self.ws.close_reason or None
        if self.taken_over:
            # The charger is on another instance now, whose "connected" may already be out: this end is news
            # for the event stream, not the charger's state (retained lifecycle, shadow) to overwrite.
            self._lifecycle("disconnected", reason or "taken over", code, retain=False)
        else:
            self._lifecycle("disconnected", reason or "connection closed", code)
            self.shadow.report({"connection": disconnected(reason, code)})
        self.shadow.reports.close()
        self.ctx.spawn(self.ctx.store.close_connection(self.session_id, datetime.now(UTC), code, reason))
        await self.link.close()
        self.finished.set()

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, reason)

    def _catch_up_desired(self) -> None:
        """Once per session, as soon as the charger may be sent requests (announced, and its boot accepted if
        the gate asks for one), fetch the shadow so configuration desired while it was away is applied."""
        if (self._announced and not self._desired_requested
                and self.ctx.csms.gate(self.state, "Heartbeat", "-1") is None):
            self._desired_requested = True
            self.shadow.request_document(self.ctx.bus.topics.shadow_get(self.charger_id), self)

    def _lifecycle(self, event: str, reason: str | None, code: int | None, *, retain: bool = True,
                   occasion: str = "") -> None:
        payload = lifecycle_event(self.charger_id, self.version.value, self.ctx.adapter_id, self.session_id, event,
                                  reason, self.remote, code, occasion)
        self.link.publish_nowait(self.ctx.bus.topics.lifecycle_of(self.charger_id), payload, retain=retain)

    # ---- reading ---------------------------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        limiter = self.ctx.rate_limiter()
        try:
            async for raw in self.ws:
                self.last_seen = time.monotonic()
                if not limiter.allow():
                    log.warning("message rate exceeded; closing", extra=self._log_extra)
                    METRICS.inc(names.ERRORS, Kind="rate_limited")
                    await self.close(CLOSE_POLICY, "message rate exceeded")
                    return
                try:
                    self._receive(raw)
                except Exception:  # a bug met by one frame must not end the charger's session
                    METRICS.inc(names.ERRORS, Kind="receive")
                    log.exception("charger frame not processed", extra={**self._log_extra, "frame_bytes": len(raw)})
        except ConnectionClosed:
            pass

    def _receive(self, raw: str | bytes) -> None:
        started = time.perf_counter()
        event = self.conn.receive(raw)
        if isinstance(event, IncomingCall):
            METRICS.inc(names.MESSAGES_IN, Action=event.action)
            self._audit_frame("in", 2, event.message_id, event.action, raw)
            self._calls.put_nowait(_Queued(event, raw, now_iso(), started))
        elif isinstance(event, IncomingResult | IncomingError):
            self._audit_frame("in", 3 if isinstance(event, IncomingResult) else 4, event.message_id,
                              event.action, raw)
            if self._pending is not None and not self._pending.done():
                self._pending.set_result(event)
        elif isinstance(event, Rejected):
            METRICS.inc(names.ERRORS, Kind="protocol")
            log.warning("rejected charger message", extra={**self._log_extra, "error": event.error.description,
                                                           "code": event.error.kind.code(self.version),
                                                           "message_id": event.error.message_id})
            if event.reply is not None:
                self._send_nowait(event.reply)
            if event.failed is not None and self._pending is not None and not self._pending.done():
                self._pending.set_result(event.failed)
        elif isinstance(event, Unmatched):
            log.info("response with unknown message id dropped",
                     extra={**self._log_extra, "message_id": event.message_id})

    def _send_nowait(self, text: str) -> None:
        task = asyncio.create_task(self._send(text))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _send(self, text: str) -> None:
        try:
            await self.ws.send(text)
        except ConnectionClosed:
            log.info("could not answer: connection closed", extra=self._log_extra)

    def _audit_frame(self, direction: str, mtype: int, message_id: str, action: str | None,
                     frame: str | bytes) -> None:
        if self._audit:
            text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
            self.ctx.store.audit(AuditEntry(datetime.now(UTC), self.charger_id, direction, mtype, message_id,
                                            action, text))

    # ---- charger calls ---------------------------------------------------------------------------------------
    async def _call_worker(self) -> None:
        while True:
            queued = await self._calls.get()
            try:
                await self._handle_call(queued)
            except Exception:
                METRICS.inc(names.ERRORS, Kind="handler")
                log.exception("handler failed", extra={**self._log_extra, "action": queued.call.action})
                if not queued.call.unconfirmed:
                    exc = OcppError(ErrorKind.INTERNAL, "the adapter could not process this message",
                                    queued.call.message_id)
                    await self._send(self.conn.error_frame(exc))

    async def _handle_call(self, q: _Queued) -> None:
        call = q.call
        refusal = self.ctx.csms.gate(self.state, call.action, call.message_id)
        if refusal is not None:
            if call.unconfirmed:  # a SEND is never answered, not even with a CALLERROR
                log.info("SEND refused before boot", extra={**self._log_extra, "action": call.action,
                                                            "error": refusal.description})
            else:
                await self._send(self.conn.error_frame(refusal))
            return
        await self._recall_transaction(call)
        response = await self.ctx.csms.answer(self.state, call.action, call.payload)
        answer = None if call.unconfirmed else self.conn.result(call, response)  # no events for a bad answer
        drafts = normalize(self.version, call.action, call.payload, None if call.unconfirmed else response,
                           self.state.book)
        origin = Origin(self.charger_id, self.version.value, self.ctx.adapter_id, q.received_at,
                        raw if isinstance(raw := q.raw, bytes) else raw.encode())
        if not await self._publish(drafts, origin, call.warnings):
            exc = OcppError(ErrorKind.INTERNAL, "event hand-off failed; retry later", call.message_id)
            await self._send(self.conn.error_frame(exc))
            return
        METRICS.observe(names.MESSAGE_LATENCY_MS, (time.perf_counter() - q.started) * 1000.0)
        self._after(drafts)
        await self._record_transactions(drafts)
        if answer is not None:
            await self._send(answer)
            METRICS.inc(names.MESSAGES_OUT, Action=call.action)
            self._audit_frame("out", 3, call.message_id, call.action, answer)

    async def _publish(self, drafts: list[EventDraft], origin: Origin, warnings: list[str]) -> bool:
        """Billing events are handed off durably before the charger is answered; the rest fire and forget."""
        durable = []
        for index, draft in enumerate(drafts):
            body = envelope(draft, origin, index, warnings)
            topic = self.ctx.bus.topics.event(self.charger_id, draft.topic_suffix)
            if draft.billing:
                durable.append(self.link.publish_durably(topic, encode(body), body["event_id"]))
            else:
                self.link.publish_nowait(topic, encode(body))
        failures = []
        try:
            for handoff in durable:
                try:
                    await handoff
                except Exception as exc:  # no PUBACK and no outbox, or the outbox write failed
                    failures.append(exc)
        finally:  # cancelled part-way: the rest were never started (closing a finished one is a no-op)
            for handoff in durable:
                handoff.close()
        for failure in failures:
            METRICS.inc(names.ERRORS, Kind="billing_handoff")
            log.error("billing event not handed off; charger will retry",
                      extra={**self._log_extra, "error": repr(failure)})
        return not failures

    def _after(self, drafts: list[EventDraft]) -> None:
        """Registry and shadow bookkeeping, started before the answer but never awaited by it."""
        for draft in drafts:
            data = draft.data
            if draft.type == "boot":
                self.shadow.report({"vendor": data["vendor"], "model": data["model"],
                                    "firmware": data["firmware"], "serial": data["serial"]})
                self._catch_up_desired()
                self.ctx.spawn(self._remember_boot(data))
            elif draft.type == "status":
                key = str(data["evse_id"]) if data["connector_id"] in (None, 1) else (
                    f"{data['evse_id']}/{data['connector_id']}")
                self.shadow.report({"connectors": {key: {"status": data["status"],
                                                         "original_status": data["original_status"],
                                                         "error_code": data["error_code"]}}})

    async def _remember_boot(self, data: dict[str, Any]) -> None:
        """With IoT provisioning, a boot naming another vendor or model than the store knew (the first boot:
        the thing was created at the first connection, before anyone knew) gives the thing its type and group."""
        store, provisioner = self.ctx.store, self.ctx.provisioner
        known = await store.get_charger(self.charger_id) if provisioner is not None else None
        await store.update_charger(
            self.charger_id, vendor=data["vendor"], model=data["model"], reported_serial=data["serial"],
            firmware=data["firmware"], ocpp_version=self.version.value, boot_status=data["status"],
            last_seen=datetime.now(UTC))
        if provisioner is not None and known is not None and (known.vendor, known.model) != (data["vendor"],
                                                                                           data["model"]):
            await provisioner.ensure(self.charger_id, data["vendor"], data["model"])

    async def _recall_transaction(self, call: IncomingCall) -> None:
        tx_id = continued_transaction(self.version, call.action, call.payload)
        if tx_id is None or self.state.book.get(tx_id) is not None:
            return
        record = await self.ctx.store.get_transaction(transaction_key(self.charger_id, tx_id))
        if record is not None:
            self.state.book.open(OpenTransaction(tx_id, record.evse_id, record.connector_id, record.id_token,
                                                 record.meter_start_wh))

    async def _record_transactions(self, drafts: list[EventDraft]) -> None:
        """Stored before the answer: a StartTransaction sent again because the answer was lost must find its
        transaction (see CentralSystem._transaction_id). An ended one keeps what its start recorded."""
        for draft in drafts:
            if draft.type not in ("transaction_started", "transaction_ended"):
                continue
            record = _transaction_record(self.charger_id, draft)
            try:
                known = None
                if record.state == "ended":
                    known = await self.ctx.store.get_transaction(record.transaction_id)
                if known is not None:
                    record = dataclasses.replace(known, **{k: v for k, v in dataclasses.asdict(record).items()
                                                           if v is not None})
                await self.ctx.store.upsert_transaction(record)
            except Exception:  # the events are out; the charger is answered all the same
                METRICS.inc(names.ERRORS, Kind="store")
                log.exception("transaction not stored", extra={**self._log_extra,
                                                              "transaction_id": record.transaction_id})

    # ---- back-end requests -----------------------------------------------------------------------------------
    def _on_request_message(self, topic: str, body: bytes) -> None:
        """Its own subscription. Before the announcement, the copy every request also sends to the shared
        subscription decides alone (another instance answers not_connected, this one hands it here)."""
        if self._announced:
            self.take_request(topic, body)

    def take_request(self, topic: str, body: bytes) -> None:
        """A back-end request, from this session's subscription or the shared one: each is served once."""
        parsed = self.ctx.bus.topics.parse_request(topic)
        if parsed is None or parsed[0] != self.charger_id:
            return
        _, namespace, request_id, operation = parsed
        key = (namespace, request_id, operation)
        if key in self._taken:
            return
        self._taken[key] = None
        if len(self._taken) > _REMEMBERED_REQUESTS:
            del self._taken[next(iter(self._taken))]
        loop = asyncio.get_running_loop()
        try:
            payload, timeout = requests.parse_body(body)
            payload, warnings = requests.check(self.version, namespace, request_id, operation, payload,
                                               strict=self.ctx.settings.strict)
        except requests.InvalidRequest as exc:
            log.warning("invalid back-end request", extra={**self._log_extra, "topic": topic, "error": str(exc)})
            self._respond(namespace, request_id, operation, RequestStatus.INVALID_REQUEST,
                          error={"code": "InvalidRequest", "description": str(exc)})
            return
        if warnings:
            log.info("back-end request repaired", extra={**self._log_extra, "topic": topic, "warnings": warnings})
        now = loop.time()
        self._enqueue(BackendRequest(self.charger_id, namespace, request_id, operation, payload,
                                     now + (timeout or self.ctx.settings.request_timeout), now,
                                     warnings=warnings))

    def submit(self, operation: str, payload: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        """Queue an adapter-internal request (shadow deltas); the future gets the response body."""
        loop = asyncio.get_running_loop()
        request = BackendRequest(self.charger_id, "", "", operation, payload,
                                 loop.time() + self.ctx.settings.request_timeout, loop.time(),
                                 loop.create_future())
        self._enqueue(request)
        assert request.done is not None
        return request.done

    def _enqueue(self, request: BackendRequest) -> None:
        """For the request worker, or answered at once: a closing session will serve no more requests, and
        a full queue refuses (so every request gets exactly one answer)."""
        if self.closing:
            self._complete(request, RequestStatus.NOT_CONNECTED, error={"description": "charger disconnected"})
            return
        try:
            self._requests.put_nowait(request)
        except asyncio.QueueFull:
            self._complete(request, RequestStatus.TIMEOUT,
                           error={"code": "QueueFull", "description": "too many requests queued for this charger"})

    async def _request_worker(self) -> None:
        """Serves the queue for the life of the session: a request that fails inside the adapter is answered
        ``adapter_error`` and the next one is served, so one bad request never strands those behind it."""
        while True:
            request = await self._requests.get()
            try:
                await self._serve(request)
            except (ConnectionClosed, asyncio.CancelledError):  # also while the new password was being hashed
                self._complete(request, RequestStatus.NOT_CONNECTED, error={"description": "charger disconnected"})
                raise
            except Exception as exc:
                METRICS.inc(names.ERRORS, Kind="request")
                log.exception("back-end request failed in the adapter",
                              extra={**self._log_extra, "operation": request.operation,
                                     "request_id": request.request_id})
                self._complete(request, RequestStatus.ADAPTER_ERROR, error={
                    "code": "InternalError", "description": f"the adapter failed serving this request: {exc!r}"})

    async def _serve(self, request: BackendRequest) -> None:
        loop = asyncio.get_running_loop()
        remaining = request.deadline - loop.time()
        if remaining <= 0:
            self._complete(request, RequestStatus.TIMEOUT, error={"description": "deadline passed in queue"})
            return
        password = password_change.new_password(request.operation, request.payload)
        digest = None if password is None else await asyncio.to_thread(hash_password, password)
        message_id, text = self.conn.start_call(request.operation, request.payload, validated=True)
        self._pending = loop.create_future()
        try:
            self.state.sent(request.operation, request.payload)
            async with asyncio.timeout_at(request.deadline):  # also a write a full TCP window holds up
                await self.ws.send(text)
                self._audit_frame("out", 2, message_id, request.operation, text if password is None else dumps(
                    Call(message_id, request.operation, password_change.redacted(request.operation,
                                                                                 request.payload))))
                answer = await self._pending
        except TimeoutError:
            self._complete(request, RequestStatus.TIMEOUT, error={"description": "charger did not answer in time"})
            return
        finally:  # unanswered for whatever reason: a late answer is unmatched, and the next request may go
            self.conn.abandon_call(message_id)
            self._pending = None
        METRICS.observe(names.REQUEST_LATENCY_MS, (loop.time() - request.received) * 1000.0)
        if isinstance(answer, IncomingResult):
            if digest is not None and password_change.accepted(request.operation, answer.payload):
                self.ctx.spawn(self._store_password(digest))
            self._complete(request, RequestStatus.OK, payload=answer.payload)
        else:
            self._complete(request, RequestStatus.CALL_ERROR, error={
                "code": answer.code, "description": answer.description, "details": answer.details})

    async def _store_password(self, digest: str) -> None:
        """The charger took a new password and reconnects with it (hashed before it was sent, so this is
        one store write, not an argon2 run, racing the reconnect)."""
        await self.ctx.store.update_charger(self.charger_id, password_hash=digest)
        log.info("charger password changed over OCPP", extra=self._log_extra)

    def _complete(self, request: BackendRequest, status: str, *, payload: dict[str, Any] | None = None,
                  error: dict[str, Any] | None = None) -> None:
        if request.done is not None:
            if not request.done.done():
                request.done.set_result({"status": status, "payload": payload, "error": error})
            return
        self._respond(request.namespace, request.request_id, request.operation, status, payload=payload,
                      error=error, warnings=request.warnings)

    def _respond(self, namespace: str, request_id: str, operation: str, status: str, *,
                 payload: dict[str, Any] | None = None, error: dict[str, Any] | None = None,
                 warnings: list[str] | None = None) -> None:
        topic = self.ctx.bus.topics.response(self.charger_id, namespace, request_id, operation)
        body = requests.response_body(self.charger_id, namespace, request_id, operation, status,
                                      payload=payload, error=error, warnings=warnings)
        if self.closing:  # a per-charger client may be stopping already: the process's own client answers
            self.ctx.spawn(self._respond_by_control(topic, body))
        else:
            self.link.publish_nowait(topic, body)

    async def _respond_by_control(self, topic: str, body: bytes) -> None:
        await self.ctx.bus.control.publish(topic, body)

    def _fail_queued_requests(self) -> None:
        while not self._requests.empty():
            self._complete(self._requests.get_nowait(), RequestStatus.NOT_CONNECTED,
                           error={"description": "charger disconnected"})


def _transaction_record(charger_id: str, draft: EventDraft) -> TransactionRecord:
    data = draft.data
    ended = draft.type == "transaction_ended"
    return TransactionRecord(
        transaction_id=transaction_key(charger_id, data["transaction_id"]), charger_id=charger_id,
        state="ended" if ended else "active", id_token=data.get("id_token"), evse_id=data.get("evse_id"),
        connector_id=data.get("connector_id"), meter_start_wh=data.get("meter_start_wh"),
        meter_stop_wh=data.get("meter_stop_wh"), energy_wh=data.get("energy_wh"),
        started_at=_parse_time(data.get("started_at")), stopped_at=_parse_time(data.get("stopped_at")),
        stop_reason=data.get("stop_reason"))


def _parse_time(value: str | None) -> datetime | None:
    return parse_timestamp(value) if value else None

