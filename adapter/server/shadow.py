"""The charger's device shadow: reported state out, desired configuration in (applied, outcome reported)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from adapter.bus.bus import Link
from adapter.ocpp.versions import Version

if TYPE_CHECKING:
    from adapter.server.session import ChargerSession

log = logging.getLogger(__name__)

_APPLIED = {"Accepted", "RebootRequired"}


def configuration_request(version: Version, key: str, value: Any) -> tuple[str, dict[str, Any]]:
    """1.6 keys go through ChangeConfiguration; 2.x keys are ``Component.Variable`` for SetVariables."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if version is Version.V16:
        return "ChangeConfiguration", {"key": key, "value": text}
    component, sep, variable = key.partition(".")
    if not sep or not component or not variable:
        raise ValueError(f"2.x configuration keys are Component.Variable, got {key!r}")
    return "SetVariables", {"setVariableData": [{"component": {"name": component}, "variable": {"name": variable},
                                                 "attributeValue": text}]}


def configuration_status(version: Version, reply: dict[str, Any]) -> str:
    if reply["status"] != "ok":
        return str(reply["status"])
    payload = reply["payload"]
    if version is Version.V16:
        return str(payload["status"])
    return str(payload["setVariableResult"][0]["attributeStatus"])


class ShadowReporter:
    def __init__(self, link: Link, update_topic: str) -> None:
        self._link = link
        self._topic = update_topic
        self._tasks: set[asyncio.Task[None]] = set()

    def report(self, reported: dict[str, Any]) -> None:
        self._link.publish_nowait(self._topic, orjson.dumps({"state": {"reported": reported}}))

    def on_delta(self, session: ChargerSession) -> Callable[[str, bytes], None]:
        def handle(topic: str, payload: bytes) -> None:
            try:
                state = orjson.loads(payload)["state"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.warning("malformed shadow delta ignored", extra={"charger_id": session.charger_id})
                return
            configuration = state.get("configuration") if isinstance(state, dict) else None
            if isinstance(configuration, dict) and configuration:
                task = asyncio.create_task(self.apply_configuration(session, configuration))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return handle

    async def apply_configuration(self, session: ChargerSession, desired: dict[str, Any]) -> None:
        applied: dict[str, Any] = {}
        statuses: dict[str, str] = {}
        for key, value in desired.items():
            try:
                operation, payload = configuration_request(session.version, key, value)
            except ValueError as exc:
                statuses[key] = "Invalid"
                log.warning("shadow configuration key refused", extra={"charger_id": session.charger_id,
                                                                       "error": str(exc)})
                continue
            reply = await session.submit(operation, payload)
            statuses[key] = configuration_status(session.version, reply)
            if statuses[key] in _APPLIED:
                applied[key] = value
        report: dict[str, Any] = {"configuration_status": statuses}
        if applied:
            report["configuration"] = applied
        self.report(report)
