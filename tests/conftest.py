"""Shared fixtures: a real Mosquitto on a free port, an in-process adapter, an MQTT probe, OCPP clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from adapter import config
from adapter.bus.client import MqttClient
from adapter.bus.endpoint import parse_endpoint
from adapter.bus.topic_handlers import topic_matches
from adapter.local_broker import LocalBroker, start_mosquitto


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Broker:
    host: str
    port: int
    local: LocalBroker
    data_dir: Path

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def stop(self) -> None:
        self.local.stop()

    def restart(self) -> None:
        self.stop()
        self.local = start_mosquitto(self.port, self.data_dir)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    port = free_port()
    data = tmp_path / "mosquitto"
    data.mkdir()
    broker = Broker("127.0.0.1", port, start_mosquitto(port, data), data)
    yield broker
    with contextlib.suppress(Exception):
        broker.stop()


class MqttProbe:
    """A back end's view of the broker: collects messages and publishes requests."""

    def __init__(self, client: MqttClient) -> None:
        self.client = client
        self.messages: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    async def subscribe(self, *filters: str) -> None:
        await self.client.subscribe(dict.fromkeys(filters, self._on_message))

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            body: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            body = payload
        self.messages.append((topic, body))
        self._changed.set()

    async def wait_for(self, predicate: Callable[[str, Any], bool], timeout: float = 10.0,
                       ) -> tuple[str, Any]:
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for topic, body in self.messages[seen:]:
                    if predicate(topic, body):
                        return topic, body
                seen = len(self.messages)
                self._changed.clear()
                await self._changed.wait()

    async def next_on(self, topic_filter: str, timeout: float = 10.0) -> Any:
        """The first message on a matching topic not yet taken by next_on."""
        topic, body = await self.wait_for(lambda t, b: topic_matches(topic_filter, t), timeout)
        self.messages.remove((topic, body))
        return body

    def on(self, topic_filter: str) -> list[Any]:
        return [b for t, b in self.messages if topic_matches(topic_filter, t)]

    async def publish(self, topic: str, body: Any) -> None:
        payload = body if isinstance(body, bytes) else orjson.dumps(body)
        await self.client.publish(topic, payload)


@pytest.fixture
async def probe(mosquitto: Broker) -> AsyncIterator[MqttProbe]:
    client = MqttClient(parse_endpoint(mosquitto.url), f"probe-{os.getpid()}-{free_port()}", durable_session_s=600)
    client.start()
    await client.wait_connected(10)
    yield MqttProbe(client)
    await client.stop()


def settings_for(broker: Broker, **overrides: Any) -> config.Settings:
    base: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "mqtt_url": broker.url, "store_url": "memory://",
                            "adapter_id": "test-adapter", "local_shadow": "on", "ping_interval": 0.0,
                            "log_level": "debug"}
    base.update(overrides)
    return config.defaults(**base)


@pytest.fixture
async def adapter_factory(mosquitto: Broker) -> AsyncIterator[Callable[..., Any]]:
    from adapter.server.app import Adapter

    started: list[Adapter] = []

    async def start(**overrides: Any) -> Adapter:
        instance = Adapter(settings_for(mosquitto, **overrides))
        await instance.start()
        started.append(instance)
        return instance

    start.started = started  # type: ignore[attr-defined]
    yield start
    for instance in reversed(started):
        await instance.shutdown()


@pytest.fixture
async def adapter(adapter_factory: Callable[..., Any]) -> Any:
    return await adapter_factory()


class OcppClient:
    """A minimal charger: sends CALLs and waits for their answers; records CALLs from the adapter."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._counter = 0
        self.incoming_calls: asyncio.Queue[list[Any]] = asyncio.Queue()
        self._answers: dict[str, asyncio.Future[list[Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                frame = orjson.loads(raw)
                if frame[0] == 2:
                    self.incoming_calls.put_nowait(frame)
                elif frame[1] in self._answers:
                    self._answers.pop(frame[1]).set_result(frame)
                else:
                    self.incoming_calls.put_nowait(frame)

    async def call(self, action: str, payload: dict[str, Any], timeout: float = 10.0) -> list[Any]:
        self._counter += 1
        message_id = f"m{self._counter}"
        return await self.send_raw(orjson.dumps([2, message_id, action, payload]).decode(), message_id, timeout)

    async def send_raw(self, text: str, expect_id: str, timeout: float = 10.0) -> list[Any]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._answers[expect_id] = future
        await self.ws.send(text)
        async with asyncio.timeout(timeout):
            return await future

    async def next_call(self, timeout: float = 10.0) -> list[Any]:
        """The next frame the adapter sent unasked (a CALL, or an answer nobody waited for)."""
        async with asyncio.timeout(timeout):
            return await self.incoming_calls.get()

    async def answer(self, frame: list[Any], payload: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps([3, frame[1], payload]).decode())

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


def url_of(adapter: Any, charger_id: str) -> str:
    return f"ws://127.0.0.1:{adapter.port}/ocpp/{charger_id}"


@pytest.fixture
async def connect(adapter_factory: Any) -> AsyncIterator[Callable[..., Any]]:
    """Opens charger connections to the adapter started last (a default one if the test started none)."""
    clients: list[OcppClient] = []

    async def open_client(charger_id: str, subprotocol: str = "ocpp1.6", **kwargs: Any) -> OcppClient:
        target = adapter_factory.started[-1] if adapter_factory.started else await adapter_factory()
        ws = await websockets.connect(url_of(target, charger_id), subprotocols=[subprotocol],  # type: ignore[list-item]
                                      **kwargs)
        client = OcppClient(ws)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()
