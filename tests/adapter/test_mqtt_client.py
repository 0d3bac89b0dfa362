"""MqttClient over a real broker: when it calls itself connected, what it subscribed to is already live."""

from __future__ import annotations

import asyncio

from adapter.bus.client import MqttClient
from adapter.bus.endpoint import parse_endpoint
from tests.conftest import Broker, MqttProbe


async def test_wait_connected_returns_once_earlier_subscriptions_are_live(mosquitto: Broker,
                                                                         probe: MqttProbe) -> None:
    received: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for n in range(5):  # a race, if there were one, would show in some of the rounds
        client = MqttClient(parse_endpoint(mosquitto.url), f"early-subscriber-{n}")
        await client.subscribe({f"early/{n}/+": lambda t, p: received.put_nowait((t, p))})  # before connecting
        client.start()
        try:
            await client.wait_connected(10)
            await probe.client.publish(f"early/{n}/x", b"first")  # PUBACKed: the broker routed it already
            async with asyncio.timeout(10):
                assert await received.get() == (f"early/{n}/x", b"first")
        finally:
            await client.stop()
