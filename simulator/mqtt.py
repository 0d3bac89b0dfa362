"""A small asyncio face on the awscrt MQTT 5 client, for the probe, the back-end driver and the relay.

Messages are delivered on awscrt's own thread: receivers that only time and count (the latency probe)
do their work right there, which keeps 10,000+ messages per second off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from urllib.parse import urlsplit

from awscrt import mqtt5

OnMessage = Callable[[str, bytes], None]


def endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"expected mqtt://host:port, got {url!r}")
    return parts.hostname, parts.port or 1883


class Mqtt:
    def __init__(self, url: str, client_id: str, on_message: OnMessage | None = None) -> None:
        host, port = endpoint(url)
        self._loop = asyncio.get_running_loop()
        self._connected: asyncio.Future[None] = self._loop.create_future()
        self._stopped: asyncio.Future[None] = self._loop.create_future()
        self._on_message = on_message
        self._client = mqtt5.Client(mqtt5.ClientOptions(
            host_name=host, port=port,
            connect_options=mqtt5.ConnectPacket(client_id=client_id, keep_alive_interval_sec=60),
            session_behavior=mqtt5.ClientSessionBehaviorType.CLEAN,
            retry_jitter_mode=mqtt5.ExponentialBackoffJitterMode.FULL,
            min_reconnect_delay_ms=100, max_reconnect_delay_ms=2000,
            on_publish_callback_fn=self._on_publish,
            on_lifecycle_event_connection_success_fn=lambda _: self._settle(self._connected),
            on_lifecycle_event_stopped_fn=lambda _: self._settle(self._stopped),
            disable_metrics=True,
        ))

    def _settle(self, future: asyncio.Future[None]) -> None:
        def done() -> None:
            if not future.done():
                future.set_result(None)
        self._loop.call_soon_threadsafe(done)

    def _on_publish(self, data: mqtt5.PublishReceivedData) -> None:
        packet = data.publish_packet
        if self._on_message is not None and packet is not None:
            self._on_message(packet.topic, bytes(packet.payload or b""))

    async def connect(self, within: float = 10.0) -> None:
        self._client.start()
        async with asyncio.timeout(within):
            await self._connected

    async def subscribe(self, *topic_filters: str, qos: int = 1) -> None:
        packet = mqtt5.SubscribePacket(subscriptions=[mqtt5.Subscription(f, mqtt5.QoS(qos))
                                                      for f in topic_filters])
        await asyncio.wrap_future(self._client.subscribe(packet))

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> Future[mqtt5.PublishCompletionData]:
        """Thread-safe; the future completes on PUBACK (QoS 1)."""
        packet = mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS(qos))
        future: Future[mqtt5.PublishCompletionData] = self._client.publish(packet)
        return future

    async def close(self) -> None:
        self._client.stop()
        async with asyncio.timeout(10):
            await self._stopped
