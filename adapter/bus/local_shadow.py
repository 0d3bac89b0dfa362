"""A local stand-in for IoT Core's device-shadow service, so shadow flows behave on Mosquitto as in AWS.

Implements the classic (unnamed) shadow topics: update -> accepted/rejected/delta/documents, get, delete,
with versions, optimistic locking on ``version``, IoT Core's 400 rejections of malformed state, and its 413 for
a state document over 8 KB.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from adapter.bus.client import MqttClient

log = logging.getLogger(__name__)

Doc = dict[str, Any]

MAX_STATE_BYTES = 8 * 1024  # IoT Core's limit on a shadow's desired and reported state together


def merge(target: Doc, patch: Doc) -> Doc:
    """JSON merge as the shadow service does it: nested objects merge, ``null`` deletes (and is never stored)."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            previous = out.get(key)
            out[key] = merge(previous if isinstance(previous, dict) else {}, value)
        else:
            out[key] = value
    return out


def delta(desired: Doc, reported: Doc) -> Doc:
    out: Doc = {}
    for key, want in desired.items():
        have = reported.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            sub = delta(want, have)
            if sub:
                out[key] = sub
        elif want != have:
            out[key] = want
    return out


class LocalShadowService:
    def __init__(self, client: MqttClient, root: str = "$aws/things") -> None:
        self._client = client
        self._root = root
        self._docs: dict[str, Doc] = {}

    async def start(self) -> None:
        await self._client.subscribe({f"{self._root}/+/shadow/{op}": self._on_message
                                      for op in ("update", "get", "delete")})

    def _on_message(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        thing, op = parts[-3], parts[-1]
        base = f"{self._root}/{thing}/shadow/{op}"
        try:
            request = orjson.loads(payload) if payload else {}
            if not isinstance(request, dict):
                raise ValueError("request must be a JSON object")
            getattr(self, f"_{op}")(thing, base, request)
        except (ValueError, orjson.JSONDecodeError) as exc:
            self._reply(f"{base}/rejected", {"code": 400, "message": str(exc)})

    def _reply(self, topic: str, body: Doc) -> None:
        self._client.publish_nowait(topic, orjson.dumps(body), self._publish_failed)

    def _publish_failed(self, error: Exception) -> None:
        if not self._client.stopping:  # replies cut by the adapter's own shutdown are expected
            log.warning("shadow service reply not delivered", extra={"error": str(error)})

    def _get(self, thing: str, base: str, request: Doc) -> None:
        doc = self._docs.get(thing)
        if doc is None:
            self._reply(f"{base}/rejected", {"code": 404, "message": f"No shadow exists with name: '{thing}'"})
            return
        state = dict(doc["state"])
        diff = delta(state.get("desired", {}), state.get("reported", {}))
        if diff:  # as IoT Core: a get also tells what desired still differs from reported
            state["delta"] = diff
        self._reply(f"{base}/accepted", {**doc, "state": state, "timestamp": int(time.time()), **_token(request)})

    def _delete(self, thing: str, base: str, request: Doc) -> None:
        doc = self._docs.pop(thing, None)
        if doc is None:
            self._reply(f"{base}/rejected", {"code": 404, "message": f"No shadow exists with name: '{thing}'"})
            return
        self._reply(f"{base}/accepted", {"version": doc["version"], "timestamp": int(time.time())})

    def _update(self, thing: str, base: str, request: Doc) -> None:
        state = _state_patch(request)
        previous = self._docs.get(thing, {"state": {}, "version": 0})
        if "version" in request and request["version"] != previous["version"]:
            self._reply(f"{base}/rejected", {"code": 409, "message": "Version conflict", **_token(request)})
            return
        current_state = dict(previous["state"])
        for section, patch in state.items():  # a null section deletes it whole
            current_state[section] = merge(current_state.get(section, {}), patch) if patch is not None else {}
        current_state = {k: v for k, v in current_state.items() if v}
        if len(orjson.dumps(current_state)) > MAX_STATE_BYTES:
            self._reply(f"{base}/rejected", {"code": 413, "message": "The payload exceeds the maximum size allowed",
                                             **_token(request)})
            return
        now = int(time.time())
        current = {"state": current_state, "version": previous["version"] + 1}
        self._docs[thing] = current
        self._reply(f"{base}/accepted", {"state": request["state"], "version": current["version"], "timestamp": now,
                                         **_token(request)})
        self._reply(f"{base}/documents", {"previous": previous, "current": current, "timestamp": now})
        diff = delta(current_state.get("desired", {}), current_state.get("reported", {}))
        if diff and "desired" in state:  # as in IoT Core: deltas follow changes of the desired state only
            self._reply(f"{base}/delta", {"state": diff, "version": current["version"], "timestamp": now})


def _state_patch(request: Doc) -> Doc:
    """The request's ``state``, checked as IoT Core checks it (its 400 messages): each section an object or
    ``null``; ``"state": null`` clears both."""
    if "state" not in request:
        raise ValueError("Missing required node: state")
    state = request["state"]
    if state is None:
        return {"desired": None, "reported": None}
    if not isinstance(state, dict):
        raise ValueError("State node must be an object")
    for section, patch in state.items():
        if section not in ("desired", "reported"):
            raise ValueError(f"State contains an invalid node: '{section}'")
        if patch is not None and not isinstance(patch, dict):
            raise ValueError(f"{section.capitalize()} node must be an object")
    return state


def _token(request: Doc) -> Doc:
    return {"clientToken": request["clientToken"]} if "clientToken" in request else {}
