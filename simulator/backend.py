"""A back end driving chargers through the adapter's MQTT request/response topics (DESIGN §3).

Requests go to ``req/v1/{cp}/{namespace}/{request_id}/{Action}`` and exactly one response comes back on
``res/v1/...`` with a transport status; the round trip is timed from publish to response.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import Sequence
from typing import Any

import orjson

from simulator.model import ChargerSpec
from simulator.mqtt import Mqtt
from simulator.requests import requests_for
from simulator.stats import Histogram


class Backend:
    def __init__(self, namespace: str = "DEFAULT") -> None:
        self.namespace = namespace
        self.latency = Histogram()
        self.outcomes: dict[str, int] = {}
        self.by_action: dict[str, Histogram] = {}
        self.unmatched = 0
        self._token = f"{os.getpid():x}{time.monotonic_ns() % 1_000_000:x}"
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[float, str, asyncio.Future[dict[str, Any]] | None]] = {}
        self._loop = asyncio.get_running_loop()
        self._drained = asyncio.Event()
        self._mqtt: Mqtt | None = None

    async def start(self, url: str) -> None:
        self._mqtt = Mqtt(url, f"sim-backend-{self._token}", self._on_response)
        await self._mqtt.connect()
        await self._mqtt.subscribe(f"res/v1/+/{self.namespace}/+/+")

    async def close(self) -> None:
        if self._mqtt is not None:
            await self._mqtt.close()

    def _on_response(self, topic: str, payload: bytes) -> None:
        received = time.perf_counter()
        parts = topic.split("/")
        entry = self._pending.pop(parts[4], None) if len(parts) == 6 else None
        if entry is None:
            self.unmatched += 1
            return
        sent, action, waiter = entry
        ms = (received - sent) * 1000.0
        self.latency.add(ms)
        self.by_action.setdefault(action, Histogram()).add(ms)
        try:
            body = orjson.loads(payload)
            status = str(body.get("status"))
        except (orjson.JSONDecodeError, AttributeError):
            body, status = {"status": "malformed"}, "malformed"
        self.outcomes[status] = self.outcomes.get(status, 0) + 1
        if waiter is not None:
            waiter.set_result(body)
        if not self._pending:
            self._drained.set()

    def send(self, charger_id: str, action: str, payload: dict[str, Any],
             waiter: asyncio.Future[dict[str, Any]] | None = None) -> None:
        assert self._mqtt is not None
        request_id = f"{self._token}-{next(self._ids)}"
        self._pending[request_id] = (time.perf_counter(), action, waiter)
        topic = f"req/v1/{charger_id}/{self.namespace}/{request_id}/{action}"
        self._mqtt.publish(topic, orjson.dumps(payload)).add_done_callback(self._published)

    def _published(self, done: asyncio.Future[None]) -> None:
        if done.exception() is not None:
            self.outcomes["publish_failed"] = self.outcomes.get("publish_failed", 0) + 1

    async def request(self, charger_id: str, action: str, payload: dict[str, Any],
                      within: float = 30.0) -> dict[str, Any]:
        """One request, awaiting its response."""
        waiter: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self.send(charger_id, action, payload, waiter)
        async with asyncio.timeout(within):
            return await waiter

    async def drive(self, chargers: Sequence[ChargerSpec], rate: float, duration: float, seed: int = 1) -> None:
        """Open-loop: `rate` requests per second to random chargers, each a random request of its version."""
        rng = random.Random(seed)
        began = self._loop.time()
        for n in itertools.count():
            due = began + n / rate
            if due - began >= duration:
                break
            if due > self._loop.time():
                await asyncio.sleep(due - self._loop.time())
            spec = rng.choice(chargers)
            action, payload = rng.choice(requests_for(spec.version, spec.connectors, rng))
            self.send(spec.charger_id, action, payload)

    async def settle(self, within: float) -> None:
        """Give outstanding requests time to be answered."""
        try:
            async with asyncio.timeout(within):
                while self._pending:
                    self._drained.clear()
                    await self._drained.wait()
        except TimeoutError:
            pass

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.latency.count + len(self._pending),
            "responses": self.latency.count,
            "no_response": len(self._pending),
            "outcomes": dict(sorted(self.outcomes.items())),
            "latency_ms": self.latency.summary(),
            "by_action_p99_ms": {a: h.summary()["p99"] for a, h in sorted(self.by_action.items())},
            "unmatched": self.unmatched,
        }
