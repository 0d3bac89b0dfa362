"""OCPP-J framing for the charger side of one WebSocket, driven from the charger's own task.

OCPP lets each side have one CALL outstanding while the other side sends its own CALLs. Rather than a
reader task per charger, the charger's single task pumps the socket whenever it waits: while it awaits a
CALLRESULT, and while it idles until its next timer. Incoming CALLs are answered synchronously by a
handler, which keeps one task per charger even for thousands of chargers.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection

from simulator.stats import Stats

CALL, CALLRESULT, CALLERROR = 2, 3, 4

Payload = dict[str, Any]


class CallTimeout(Exception):
    """The central system did not answer a CALL in time."""


class CallFailed(Exception):
    """The central system answered a CALL with a CALLERROR."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code


class Reply(Exception):
    """Raised by a request handler to answer with a CALLERROR instead of a payload."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(description)
        self.code = code
        self.description = description


Handler = Callable[[str, Payload], Payload]


class OcppLink:
    """One charger's end of an OCPP-J conversation."""

    __slots__ = ("_idle", "_ids", "call_timeout", "format_violation", "handler", "stats", "ws")

    def __init__(self, ws: ClientConnection, handler: Handler, stats: Stats, call_timeout: float,
                 format_violation: str) -> None:
        self.ws = ws
        self.handler = handler
        self.stats = stats
        self.call_timeout = call_timeout
        self.format_violation = format_violation  # the version's name for "malformed payload"
        self._ids = itertools.count(1)
        self._idle: asyncio.Timeout | None = None  # the deadline of pump_until, while it waits

    async def call(self, action: str, payload: Payload) -> Payload:
        """Send a CALL and pump the socket until its CALLRESULT arrives."""
        message_id = str(next(self._ids))
        started = time.perf_counter()
        await self.ws.send(orjson.dumps([CALL, message_id, action, payload]), text=True)
        self.stats.messages_sent += 1
        self.stats.calls += 1
        deadline = asyncio.get_running_loop().time() + self.call_timeout
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    frame = self._parse(await self.ws.recv(decode=False))
            except TimeoutError:
                self.stats.error("call_timeout")
                raise CallTimeout(action) from None
            except asyncio.CancelledError:
                self.stats.calls_cut += 1
                raise
            if frame is None:
                continue
            kind = frame[0]
            if kind == CALL:
                await self._answer(frame)
            elif frame[1] != message_id:
                self.stats.error("stray_response")
            elif kind == CALLRESULT:
                self.stats.latency.add((time.perf_counter() - started) * 1000.0)
                result: Payload = frame[2]
                return result
            else:
                self.stats.error("call_error")
                raise CallFailed(str(frame[2]), str(frame[3]) if len(frame) > 3 else "")

    async def pump_until(self, deadline: float) -> None:
        """Answer incoming CALLs until the deadline, returning early after each one.

        Returning after a request lets the charger act on what the request changed (a remote start, a
        trigger) without a second task.
        """
        try:
            async with asyncio.timeout_at(deadline) as self._idle:
                data = await self.ws.recv(decode=False)
        except TimeoutError:
            return
        finally:
            self._idle = None
        frame = self._parse(data)
        if frame is None:
            return
        if frame[0] == CALL:
            await self._answer(frame)
        else:
            self.stats.error("stray_response")

    def hurry(self, when: float) -> None:
        """Wake an idle wait earlier (a fleet-wide change the charger must act on)."""
        idle = self._idle
        if idle is not None and not idle.expired() and (idle.when() or 0.0) > when:
            idle.reschedule(when)

    def _parse(self, data: bytes) -> list[Any] | None:
        self.stats.messages_received += 1
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError:
            frame = None
        if (isinstance(frame, list) and len(frame) >= 3 and frame[0] in (CALL, CALLRESULT, CALLERROR)
                and isinstance(frame[1], str)):
            return frame
        self.stats.error("malformed_frame")
        return None

    async def _answer(self, frame: list[Any]) -> None:
        message_id = frame[1]
        if len(frame) != 4 or not isinstance(frame[2], str) or not isinstance(frame[3], dict):
            reply: list[Any] = [CALLERROR, message_id, self.format_violation, "malformed CALL", {}]
        else:
            try:
                reply = [CALLRESULT, message_id, self.handler(frame[2], frame[3])]
                self.stats.answered(frame[2])
            except Reply as error:
                reply = [CALLERROR, message_id, error.code, error.description, {}]
            except (KeyError, TypeError, ValueError, IndexError) as error:
                reply = [CALLERROR, message_id, self.format_violation, f"bad payload: {error!r}"[:200], {}]
        await self.ws.send(orjson.dumps(reply), text=True)
        self.stats.messages_sent += 1
