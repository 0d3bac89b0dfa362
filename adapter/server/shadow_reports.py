"""A charger's reported shadow state, sent as few updates as its meaning allows.

A boot says connected, vendor and model, then a status per connector: one shadow update each would be five or
more within a second. IoT Core keeps at most 10 shadow messages in flight per thing, throttles updates per
account (429), and bills each one; the local stand-in spends a worker's CPU on each in a storm. So a report
waits ``REPORT_INTERVAL_S``, and whatever is reported meanwhile goes out with it as one update; the session's
end sends what waits at once. Merging follows the shadow's own rules (objects merge, ``null`` deletes), so the
document ends up as it would have after each update in turn. The lifecycle event, not the shadow, is the
prompt sign of a connection.

An update IoT Core throttles or fails (429, 5xx) is sent again, merged under what was reported since; any
other rejection (413: the document would pass 8 KB) is logged and dropped, as sending it again would fail alike.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from adapter.bus.bus import Link
from adapter.observability import names
from adapter.observability.metrics import METRICS

log = logging.getLogger(__name__)

Patch = dict[str, Any]

REPORT_INTERVAL_S = 1.0
RETRYABLE = frozenset({429, 500, 503})
MAX_ATTEMPTS = 5  # tries of a report throttled every time (2, 4, 8, 16 s apart): the service is not coming back soon
# How long the last update is kept for its rejection. IoT Core answers within a round trip, and updates mostly go
# out an interval apart; forgetting it spares every idle session its few hundred bytes.
REJECTION_WAIT_S = 10.0


def compose(base: Patch, patch: Patch) -> bool:
    """Fold ``patch`` into ``base`` (both shadow update states) so that applying ``base`` does what applying the
    two in turn would. False, with ``base`` unchanged, where one update cannot say it: an object set where the
    first deletes (the second would merge into what the document still holds)."""
    if not _composable(base, patch):
        return False
    _fold(base, patch)
    return True


def _composable(base: Patch, patch: Patch) -> bool:
    for key, value in patch.items():
        if isinstance(value, dict) and key in base:
            held = base[key]
            if held is None or (isinstance(held, dict) and not _composable(held, value)):
                return False
    return True


def _fold(base: Patch, patch: Patch) -> None:
    for key, value in patch.items():
        held = base.get(key)
        if isinstance(value, dict) and isinstance(held, dict):
            _fold(held, value)
        else:
            base[key] = _copy(value)


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


class ShadowReports:
    __slots__ = ("_attempts", "_closed", "_count", "_forget", "_last", "_link", "_pending", "_session_id", "_timer",
                 "_topic")

    def __init__(self, link: Link, update_topic: str, session_id: str) -> None:
        self._link = link
        self._topic = update_topic
        self._session_id = session_id
        self._pending: Patch | None = None
        self._attempts = 0  # rejections in a row of what ``_pending`` carries
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._count = 0
        self._last: tuple[str, bytes, int] | None = None  # the last update: client token, payload, attempts
        self._forget: asyncio.TimerHandle | None = None

    def report(self, reported: Patch, desired: Patch | None = None) -> None:
        state: Patch = {"reported": reported} if desired is None else {"reported": reported, "desired": desired}
        if self._pending is None:
            self._pending = _copy(state)
        elif not compose(self._pending, state):
            self.flush()
            self._pending = _copy(state)
        self._schedule(REPORT_INTERVAL_S)

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            return
        if delay <= 0 or self._closed:
            self.flush()
        else:
            self._timer = asyncio.get_running_loop().call_later(delay, self.flush)

    def close(self) -> None:
        """The session is ending: what is pending goes out now, as does anything reported later (a desired
        change's outcome), while the link can still carry it. Rejections are no longer followed, so nothing
        keeps the session's link alive past its end."""
        self.flush()
        self._closed = True
        if self._forget is not None:
            self._forget.cancel()
        self._drop_last()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        state, self._pending = self._pending, None
        if state is None:
            return
        self._count += 1
        token = f"{self._session_id}-{self._count}"
        payload = orjson.dumps({"state": state, "clientToken": token})
        if not self._closed:
            self._last = (token, bytes(memoryview(payload)), self._attempts)  # orjson's own buffer is 4 KiB
            if self._forget is not None:
                self._forget.cancel()
            self._forget = asyncio.get_running_loop().call_later(REJECTION_WAIT_S, self._drop_last)
        self._attempts = 0
        self._link.publish_nowait(self._topic, payload)

    def _drop_last(self) -> None:
        self._last = self._forget = None

    def on_rejected(self, topic: str, payload: bytes) -> None:
        """IoT Core's answer to an update it did not apply. Others' updates of this shadow are not ours."""
        try:
            message = orjson.loads(payload)
            token = message.get("clientToken")
        except (orjson.JSONDecodeError, AttributeError):
            log.warning("malformed shadow rejection ignored", extra=self._log_extra())
            return
        if self._last is None or token != self._last[0]:
            return
        _, sent, attempts = self._last
        self._last = None
        code = message.get("code")
        retry = isinstance(code, int) and code in RETRYABLE and attempts + 1 < MAX_ATTEMPTS
        METRICS.inc(names.ERRORS, Kind="shadow")
        log.warning("shadow report rejected", extra={**self._log_extra(), "code": code, "error": message.get("message"),
                                                     "retry": retry, "attempt": attempts + 1})
        if retry:
            self._requeue(orjson.loads(sent)["state"], attempts + 1)

    def _requeue(self, state: Patch, attempts: int) -> None:
        """What was reported since overrides the rejected state; both go out once the backoff is over."""
        if self._pending is not None and not compose(state, self._pending):
            log.warning("rejected shadow report superseded; not sent again", extra=self._log_extra())
            return
        self._pending, self._attempts = state, attempts
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._schedule(REPORT_INTERVAL_S * 2 ** attempts)

    def _log_extra(self) -> dict[str, str]:
        return {"charger_id": self._link.charger_id, "session_id": self._session_id}
