"""Asks the back end over MQTT (token decisions, DataTransfer) and waits, with a deadline, for its reply."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import orjson

from adapter.bus.client import MqttClient
from adapter.bus.topics import Topics

log = logging.getLogger(__name__)


class MqttDelegate:
    """Request on ``ocpp/{cp}/delegate/{Action}``; reply on ``delegate/v1/{adapter_id}/{cp}/{request_id}``."""

    def __init__(self, client: MqttClient, topics: Topics, adapter_id: str) -> None:
        self._client = client
        self._topics = topics
        self._adapter_id = adapter_id
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def start(self) -> None:
        await self._client.subscribe({self._topics.delegate_replies_to(self._adapter_id): self._on_reply})

    def _on_reply(self, topic: str, payload: bytes) -> None:
        future = self._waiting.get(topic.rsplit("/", 1)[-1])
        if future is None or future.done():
            log.info("late or unknown delegate reply dropped", extra={"topic": topic})
            return
        try:
            reply = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("delegate reply is not JSON", extra={"topic": topic})
            return
        if isinstance(reply, dict):
            future.set_result(reply)

    async def ask(self, charger_id: str, action: str, payload: dict[str, Any],
                  timeout: float) -> dict[str, Any] | None:
        request_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        body = {"request_id": request_id, "charger_id": charger_id, "action": action, "payload": payload,
                "reply_topic": self._topics.delegate_reply(self._adapter_id, charger_id, request_id)}
        try:
            async with asyncio.timeout(timeout):
                await self._client.publish(self._topics.delegate_request(charger_id, action), orjson.dumps(body))
                return await future
        except (TimeoutError, ConnectionError):
            return None
        finally:
            self._waiting.pop(request_id, None)
