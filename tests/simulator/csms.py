"""A tiny central system for testing simulated chargers without the adapter.

It answers every charger CALL with a valid response, validates what chargers send against the official
schemas (requests and the responses to its own CALLs), records everything, and lets a test send CALLs.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve

from tests.simulator.schemas import validate


@dataclass
class Received:
    charger_id: str
    version: str
    action: str
    payload: dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class TinyCsms:
    def __init__(self, heartbeat_interval: int = 60, pending_boots: int = 0) -> None:
        self.heartbeat_interval = heartbeat_interval
        self.pending_boots = pending_boots  # answer this many BootNotifications with Pending first
        self.received: list[Received] = []
        self.connections: dict[str, ServerConnection] = {}
        self.connects: dict[str, int] = {}
        self.invalid: list[str] = []
        self._changed = asyncio.Condition()
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._tx_ids = itertools.count(1)
        self._server: Server | None = None

    async def __aenter__(self) -> TinyCsms:
        self._server = await serve(self._session, "127.0.0.1", 0,
                                   subprotocols=["ocpp1.6", "ocpp2.0.1", "ocpp2.1"])  # type: ignore[list-item]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/ocpp"

    def of(self, charger_id: str, action: str | None = None) -> list[Received]:
        return [r for r in self.received if r.charger_id == charger_id and action in (None, r.action)]

    async def wait_for(self, predicate: Callable[[], Any], within: float = 10.0) -> Any:
        async with asyncio.timeout(within), self._changed:
            result = predicate()
            while not result:
                await self._changed.wait()
                result = predicate()
            return result

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def call(self, charger_id: str, action: str, payload: dict[str, Any]) -> Any:
        """Send a CALL to a connected charger; returns its payload or ("error", code)."""
        ws = self.connections[charger_id]
        message_id = f"csms-{next(self._ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await ws.send(orjson.dumps([2, message_id, action, payload]).decode())
        result = await asyncio.wait_for(future, 10)
        if isinstance(result, dict):
            self._check(ws, action, result, response=True)
        return result

    def _check(self, ws: ServerConnection, action: str, payload: dict[str, Any], response: bool) -> None:
        version = (ws.subprotocol or "").removeprefix("ocpp")
        try:
            validate(version, action, payload, response=response)
        except Exception as error:
            self.invalid.append(f"{version} {action}{' response' if response else ''}: {error}")

    async def _session(self, ws: ServerConnection) -> None:
        charger_id = ws.request.path.rsplit("/", 1)[-1] if ws.request else "?"
        version = (ws.subprotocol or "").removeprefix("ocpp")
        self.connections[charger_id] = ws
        self.connects[charger_id] = self.connects.get(charger_id, 0) + 1
        await self._notify()
        try:
            async for data in ws:
                frame = orjson.loads(data)
                if frame[0] == 2:
                    _, message_id, action, payload = frame
                    self._check(ws, action, payload, response=False)
                    self.received.append(Received(charger_id, version, action, payload))
                    answer = self._answer(version, action, payload)
                    await ws.send(orjson.dumps([3, message_id, answer]).decode())
                elif frame[1] in self._pending:
                    self._pending.pop(frame[1]).set_result(frame[2] if frame[0] == 3 else ("error", frame[2]))
                await self._notify()
        finally:
            if self.connections.get(charger_id) is ws:
                del self.connections[charger_id]
            await self._notify()

    def _answer(self, version: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        accepted = {"status": "Accepted"}
        if action == "BootNotification":
            status = "Accepted"
            if self.pending_boots > 0:
                self.pending_boots -= 1
                status = "Pending"
            interval = self.heartbeat_interval if status == "Accepted" else 1
            return {"status": status, "currentTime": _now(), "interval": interval}
        if action == "Heartbeat":
            return {"currentTime": _now()}
        if action == "Authorize":
            return {"idTagInfo": accepted} if version == "1.6" else {"idTokenInfo": accepted}
        if action == "StartTransaction":
            return {"transactionId": next(self._tx_ids), "idTagInfo": accepted}
        if action == "DataTransfer":
            return accepted
        return {}
