"""An asyncio face on the awscrt MQTT 5 client: awaitable PUBACKs, handlers on the event loop, subscriptions
restored after every reconnect (awscrt itself reconnects with exponential backoff and jitter)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future

from awscrt import auth, io, mqtt5

from adapter.bus.endpoint import MqttEndpoint
from adapter.bus.loop_hop import LoopHop
from adapter.bus.thread_state import adopt_current_thread
from adapter.bus.topic_handlers import MessageHandler, TopicHandlers
from adapter.observability import names
from adapter.observability.metrics import METRICS

log = logging.getLogger(__name__)


# AWS IoT Core refuses a SUBSCRIBE of more than 8 topic filters (a fixed quota); a shared-mode pool connection
# restores 4 per charger after a reconnect.
MAX_FILTERS_PER_SUBSCRIBE = 8
# A restore that failed is tried again after 1 s, doubling to a minute.
RESTORE_RETRY_S = 1.0
RESTORE_RETRY_MAX_S = 60.0
_TRANSIENT = frozenset({mqtt5.SubackReasonCode.QUOTA_EXCEEDED, mqtt5.SubackReasonCode.UNSPECIFIED_ERROR,
                        mqtt5.SubackReasonCode.IMPLEMENTATION_SPECIFIC_ERROR,
                        mqtt5.SubackReasonCode.PACKET_IDENTIFIER_IN_USE})


class MqttUnavailable(ConnectionError):
    """The broker did not acknowledge in time, or the client is not connected."""


class MqttRefused(MqttUnavailable):
    """The broker answered no (a PUBACK reason code from 0x80), or awscrt found the packet invalid before sending
    it (larger than the broker takes, or on IoT Core a topic over 256 bytes): unlike an outage, sending the same
    again soon will not help."""


def _tls_context(endpoint: MqttEndpoint) -> io.ClientTlsContext | None:
    if not endpoint.tls:
        return None
    if endpoint.cert_file and endpoint.key_file:
        options = io.TlsContextOptions.create_client_with_mtls_from_path(endpoint.cert_file, endpoint.key_file)
    else:
        options = io.TlsContextOptions()
    if endpoint.ca_file:
        options.override_default_trust_store_from_path(None, endpoint.ca_file)
    if endpoint.sigv4_region:
        options.alpn_list = ["http/1.1"]
    return io.ClientTlsContext(options)


def _sigv4_transform(region: str) -> Callable[[mqtt5.WebsocketHandshakeTransformArgs], None]:
    credentials = auth.AwsCredentialsProvider.new_default_chain()
    signing = auth.AwsSigningConfig(algorithm=auth.AwsSigningAlgorithm.V4, signature_type=(
        auth.AwsSignatureType.HTTP_REQUEST_QUERY_PARAMS), credentials_provider=credentials, region=region,
        service="iotdevicegateway", omit_session_token=True)

    def transform(args: mqtt5.WebsocketHandshakeTransformArgs) -> None:
        def signed(future: Future[None]) -> None:
            args.set_done(future.exception())
        auth.aws_sign_request(args.http_request, signing).add_done_callback(signed)
    return transform


@functools.cache
def _transport(endpoint: MqttEndpoint) -> tuple[io.ClientTlsContext | None,
                                                Callable[[mqtt5.WebsocketHandshakeTransformArgs], None] | None]:
    """TLS context and SigV4 signer, built once per endpoint and shared by all its clients: per client, reading
    and parsing the certificate files held the event loop 10-20 ms per charger, and each signer had its own
    credentials chain to fetch."""
    return _tls_context(endpoint), (_sigv4_transform(endpoint.sigv4_region) if endpoint.sigv4_region else None)


class MqttClient:
    def __init__(self, endpoint: MqttEndpoint, client_id: str, *, keep_alive_s: int = 60,
                 ack_timeout_s: int = 30, durable_session_s: int = 0,
                 on_connected: Callable[[], None] | None = None, will: tuple[str, bytes] | None = None) -> None:
        """``durable_session_s`` > 0 keeps the broker-side session (subscriptions and queued QoS 1 messages)
        that long across disconnects, for subscribers that must not miss events. ``on_connected`` runs on the
        loop after every (re)connection. ``will`` (topic, payload) is what the broker publishes, retained at
        QoS 1, when the connection ends without a DISCONNECT (a crash, a lost network)."""
        self.client_id = client_id
        self._on_connected_hook = on_connected
        self._loop = asyncio.get_running_loop()
        self._hop = LoopHop(self._loop)
        self._in_flight: set[Future[mqtt5.PublishCompletionData]] = set()
        self._handlers = TopicHandlers()
        self._connected = asyncio.Event()
        self._usable = asyncio.Event()  # connected, and the subscriptions held before it restored
        self._ever_connected = False
        self._connection = 0  # counts connections: a retry of a lost one's restore is dropped
        self._stopped = False
        self._halted = asyncio.Event()  # awscrt's lifecycle "stopped": the DISCONNECT is out, the socket closed
        tls_ctx, sign = _transport(endpoint)
        options = mqtt5.ClientOptions(
            host_name=endpoint.host, port=endpoint.port, tls_ctx=tls_ctx, websocket_handshake_transform=sign,
            connect_options=mqtt5.ConnectPacket(
                client_id=client_id, keep_alive_interval_sec=keep_alive_s,
                session_expiry_interval_sec=durable_session_s or None,
                will=mqtt5.PublishPacket(topic=will[0], payload=will[1], qos=mqtt5.QoS.AT_LEAST_ONCE, retain=True)
                if will else None),
            session_behavior=(mqtt5.ClientSessionBehaviorType.REJOIN_ALWAYS if durable_session_s
                              else mqtt5.ClientSessionBehaviorType.CLEAN),
            # On IoT Core, awscrt itself keeps to its quotas: publishes paced to 100 a second per connection
            # rather than throttled by the broker, and a packet it would refuse failed here, with the reason.
            extended_validation_and_flow_control_options=(
                mqtt5.ExtendedValidationAndFlowControlOptions.AWS_IOT_CORE_DEFAULTS if endpoint.is_iot_core
                else mqtt5.ExtendedValidationAndFlowControlOptions.NONE),
            offline_queue_behavior=mqtt5.ClientOperationQueueBehaviorType.FAIL_QOS0_PUBLISH_ON_DISCONNECT,
            retry_jitter_mode=mqtt5.ExponentialBackoffJitterMode.FULL,
            min_reconnect_delay_ms=200, max_reconnect_delay_ms=10_000, ack_timeout_sec=ack_timeout_s,
            on_publish_callback_fn=self._on_publish,
            on_lifecycle_event_connection_success_fn=self._on_connected,
            on_lifecycle_event_disconnection_fn=self._on_disconnected,
            on_lifecycle_event_stopped_fn=self._on_halted,
            disable_metrics=True,
        )
        self._client = mqtt5.Client(options)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def stopping(self) -> bool:
        """``stop()`` was called: publishes failing from now on were cut by it, not by the broker."""
        return self._stopped

    def start(self) -> None:
        self._client.start()

    async def wait_connected(self, timeout: float | None) -> None:
        """Until connected with every subscription made before the connection acknowledged (SUBACK)."""
        async with asyncio.timeout(timeout):
            await self._usable.wait()

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Let the publishes still in flight (lifecycle, shadow, responses) reach the broker first, also when
        the connection is still being made: a charger that sends one message and hangs up at once would
        otherwise lose its event to a client stopped before its CONNACK."""
        self._stopped = True
        if self._in_flight:
            waiters = [asyncio.wrap_future(f) for f in list(self._in_flight)]
            _, late = await asyncio.wait(waiters, timeout=drain_timeout)
            for waiter in late:  # their failure, if any, is reported by whoever published them
                waiter.add_done_callback(lambda w: w.cancelled() or w.exception())
            if late:
                log.warning("closing MQTT connection with publishes unacknowledged",
                            extra={"client_id": self.client_id, "unacknowledged": len(late)})
        # An explicit DISCONNECT: awscrt's default just closes the socket, and the broker then publishes the
        # Will as if this process had died.
        self._client.stop(mqtt5.DisconnectPacket(reason_code=mqtt5.DisconnectReasonCode.NORMAL_DISCONNECTION))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout):
                await self._halted.wait()

    def _send(self, packet: mqtt5.PublishPacket) -> Future[mqtt5.PublishCompletionData]:
        crt_future: Future[mqtt5.PublishCompletionData]
        try:
            crt_future = self._client.publish(packet)
        except RuntimeError as exc:  # awscrt validates as it takes the packet: failed like any other publish
            crt_future = Future()
            crt_future.set_exception(MqttRefused(str(exc)))
            return crt_future
        self._in_flight.add(crt_future)
        crt_future.add_done_callback(self._in_flight.discard)  # set.discard is atomic: safe from awscrt's thread
        return crt_future

    # awscrt calls these on its own threads; hop to the loop.
    def _on_publish(self, data: mqtt5.PublishReceivedData) -> None:
        adopt_current_thread()
        packet = data.publish_packet
        self._hop.call(self._dispatch, packet.topic, bytes(packet.payload or b""))

    def _on_connected(self, data: mqtt5.LifecycleConnectSuccessData) -> None:
        self._hop.call(self._connected_on_loop)

    def _on_disconnected(self, data: mqtt5.LifecycleDisconnectData) -> None:
        self._hop.call(self._disconnected_on_loop, data.exception)

    def _on_halted(self, data: mqtt5.LifecycleStoppedData) -> None:
        self._hop.call(self._halted.set)

    def _connected_on_loop(self) -> None:
        if self._ever_connected:
            METRICS.inc(names.MQTT_RECONNECTS)
            log.info("mqtt reconnected", extra={"client_id": self.client_id})
        self._ever_connected = True
        self._connected.set()
        if self._on_connected_hook is not None:
            self._on_connected_hook()
        self._connection += 1
        self._restore(list(self._handlers), self._connection, 0)

    def _restore(self, filters: list[str], connection: int, attempt: int) -> None:
        """Subscribe again to what was held, until done or this connection is lost (the next one restores it
        all): a SUBSCRIBE can fail with the link up (an acknowledgement timeout, a broker's subscribe quota),
        and a client left unusable would hold every session on it from announcing its charger."""
        if not self._current(connection):
            return
        held = set(self._handlers)
        filters = [f for f in filters if f in held]  # not those unsubscribed since
        if not filters:
            self._usable.set()
            return

        def done(future: Future[mqtt5.SubackPacket]) -> None:
            self._hop.call(self._restored_on_loop, filters, connection, attempt, future)
        self._send_subscribe(filters).add_done_callback(done)

    def _current(self, connection: int) -> bool:
        """Still the connection a restore was made for: not lost since, and the client not stopping."""
        return connection == self._connection and self.connected and not self._stopped

    def _restored_on_loop(self, filters: list[str], connection: int, attempt: int,
                          future: Future[mqtt5.SubackPacket]) -> None:
        if not self._current(connection):  # failed with the link or the client: the next connection restores
            return
        error = future.exception()
        retry = filters if error is not None else self._refused(filters, future.result(), _TRANSIENT)
        if not retry:
            self._restore([], connection, attempt)
            return
        delay = min(RESTORE_RETRY_MAX_S, RESTORE_RETRY_S * 2**attempt)
        log.warning("mqtt subscriptions not restored; retrying", extra={
            "client_id": self.client_id, "topics": retry, "error": str(error or "refused"), "retry_in_s": delay})
        self._loop.call_later(delay, self._restore, retry, connection, attempt + 1)

    def _refused(self, filters: list[str], suback: mqtt5.SubackPacket,
                 transient: frozenset[mqtt5.SubackReasonCode]) -> list[str]:
        """The filters refused for a ``transient`` reason; the others refused are logged, since trying again
        cannot help (an IoT policy that does not allow them, say)."""
        codes = list(suback.reason_codes or [])
        refused = [(f, code) for f, code in zip(filters, codes, strict=False) if code >= 0x80]
        final = [(f, code.name) for f, code in refused if code not in transient]
        if final:
            log.error("broker refused subscriptions", extra={"client_id": self.client_id, "refused": final})
        return [f for f, code in refused if code in transient]

    def _disconnected_on_loop(self, exc: Exception | None) -> None:
        self._connected.clear()
        self._usable.clear()
        if not self._stopped:
            log.warning("mqtt connection lost", extra={"client_id": self.client_id, "error": str(exc)})

    def _dispatch(self, topic: str, payload: bytes) -> None:
        handler = self._handlers.match(topic)
        if handler is None:
            return
        try:
            handler(topic, payload)
        except Exception:
            log.exception("mqtt handler failed", extra={"topic": topic})

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                ) -> asyncio.Future[None]:
        """The future completes on PUBACK (QoS 1) or when written (QoS 0); it fails when the broker refuses."""
        packet = mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS(qos), retain=retain)
        result: asyncio.Future[None] = self._loop.create_future()

        def done(crt_future: Future[mqtt5.PublishCompletionData]) -> None:
            adopt_current_thread()
            self._hop.call(_settle, result, crt_future)
        self._send(packet).add_done_callback(done)
        return result

    def publish_nowait(self, topic: str, payload: bytes, on_failure: Callable[[Exception], None], *,
                       retain: bool = False) -> None:
        """QoS 1 without waking the event loop on success (one loop hop per message is measurable at
        thousands of messages per second); ``on_failure`` runs on the loop."""
        packet = mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS.AT_LEAST_ONCE, retain=retain)
        crt_future = self._send(packet)

        def done(f: Future[mqtt5.PublishCompletionData]) -> None:
            adopt_current_thread()
            error = _failure(f)
            if error is not None:
                self._hop.call(on_failure, error)
        crt_future.add_done_callback(done)

    async def subscribe(self, handlers: Mapping[str, MessageHandler]) -> None:
        """All filters in one SUBSCRIBE: one round trip however many a session needs."""
        self._handlers.update(handlers)
        if self.connected and handlers:
            filters = list(handlers)
            self._refused(filters, await asyncio.wrap_future(self._send_subscribe(filters)), frozenset())

    async def unsubscribe(self, topic_filters: Iterable[str]) -> None:
        known = [f for f in topic_filters if self._handlers.pop(f) is not None]
        if known and self.connected:
            await asyncio.wrap_future(self._client.unsubscribe(mqtt5.UnsubscribePacket(topic_filters=known)))

    def _send_subscribe(self, filters: list[str]) -> Future[mqtt5.SubackPacket]:
        """As SUBSCRIBEs of at most ``MAX_FILTERS_PER_SUBSCRIBE`` filters each; one SUBACK for all of them, its
        reason codes in the order of ``filters``, or the first failure."""
        packets: list[Future[mqtt5.SubackPacket]] = [self._client.subscribe(mqtt5.SubscribePacket(subscriptions=[
            mqtt5.Subscription(f, mqtt5.QoS.AT_LEAST_ONCE) for f in filters[start:start + MAX_FILTERS_PER_SUBSCRIBE]]))
            for start in range(0, len(filters), MAX_FILTERS_PER_SUBSCRIBE)]
        if len(packets) == 1:
            return packets[0]
        combined: Future[mqtt5.SubackPacket] = Future()
        pending = [len(packets)]
        lock = threading.Lock()  # SUBACKs complete on awscrt's thread, possibly more than one at once

        def one_done(_: Future[mqtt5.SubackPacket]) -> None:
            with lock:
                pending[0] -= 1
                if pending[0]:
                    return
            failed = next((p.exception() for p in packets if p.exception() is not None), None)
            if failed is not None:
                combined.set_exception(failed)
            else:
                combined.set_result(mqtt5.SubackPacket(reason_codes=[
                    code for p in packets for code in (p.result().reason_codes or [])]))
        for packet in packets:
            packet.add_done_callback(one_done)
        return combined


def _failure(crt_future: Future[mqtt5.PublishCompletionData]) -> MqttUnavailable | None:
    exc = crt_future.exception()
    if isinstance(exc, MqttUnavailable):
        return exc
    if exc is not None:  # a packet over the broker's maximum size fails validation here, after the CONNACK
        refused = "VALIDATION" in getattr(exc, "name", "")
        return (MqttRefused if refused else MqttUnavailable)(str(exc))
    puback = crt_future.result().puback
    if puback is not None and puback.reason_code >= 0x80:
        return MqttRefused(f"broker refused publish: {puback.reason_code!r}")
    return None


def _settle(result: asyncio.Future[None], crt_future: Future[mqtt5.PublishCompletionData]) -> None:
    if result.done():
        return
    error = _failure(crt_future)
    if error is not None:
        result.set_exception(error)
    else:
        result.set_result(None)
