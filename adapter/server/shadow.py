"""The charger's device shadow: reported state out, desired state in (configuration, availability, charging
limit; applied through the charger's requests, each outcome reported)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from adapter.bus.bus import Link
from adapter.csms.desired_state import SECTIONS, Build, outcome
from adapter.ocpp.errors import OcppError
from adapter.ocpp.validation import validate
from adapter.security import password_change
from adapter.server.shadow_reports import ShadowReports

if TYPE_CHECKING:
    from adapter.server.session import ChargerSession

log = logging.getLogger(__name__)

class ShadowReporter:
    def __init__(self, link: Link, update_topic: str, session_id: str) -> None:
        self._link = link
        self.reports = ShadowReports(link, update_topic, session_id)
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen_version = -1

    def report(self, reported: dict[str, Any], desired: dict[str, Any] | None = None) -> None:
        self.reports.report(reported, desired)

    def on_delta(self, session: ChargerSession) -> Callable[[str, bytes], None]:
        """Desired state changed while the charger is connected."""
        def handle(topic: str, payload: bytes) -> None:
            state = self._fresh_state(payload, session)
            if state is not None:
                self._apply_soon(session, state)
        return handle

    def on_document(self, session: ChargerSession) -> Callable[[str, bytes], None]:
        """The answer to ``request_document``: what was desired while the charger was away (IoT Core sends no
        delta for changes made before a subscription existed). Answers to others' gets are not ours."""
        def handle(topic: str, payload: bytes) -> None:
            if self._seen_version >= 0:  # a live delta came first and carried whatever is pending
                return
            state = self._fresh_state(payload, session, client_token=session.session_id)
            delta = state.get("delta") if state is not None else None
            if isinstance(delta, dict):
                self._apply_soon(session, delta)
        return handle

    def request_document(self, get_topic: str, session: ChargerSession) -> None:
        self._link.publish_nowait(get_topic, orjson.dumps({"clientToken": session.session_id}))

    def _apply_soon(self, session: ChargerSession, desired: dict[str, Any]) -> None:
        if _wanted(desired):
            task = asyncio.create_task(self.apply_desired(session, desired))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _fresh_state(self, payload: bytes, session: ChargerSession,
                     client_token: str | None = None) -> dict[str, Any] | None:
        """The ``state`` of a shadow message not seen yet, or None. A change desired just as the session starts
        arrives twice, as a delta and in the document it asked for, with the same shadow version: apply it once.
        Malformed messages are logged."""
        try:
            message = orjson.loads(payload)
            state = message["state"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("malformed shadow message ignored", extra={"charger_id": session.charger_id})
            return None
        if client_token is not None and message.get("clientToken") != client_token:
            return None
        version = message.get("version")
        if isinstance(version, int):
            if version <= self._seen_version:
                return None
            self._seen_version = version
        return state if isinstance(state, dict) else None

    async def apply_desired(self, session: ChargerSession, desired: dict[str, Any]) -> None:
        """Each section's keys in turn, one request each; one report of every outcome. A password, once the
        charger took it, is reported masked and deleted from desired: it must not linger in the shadow document,
        and without it no delta keeps asking for it."""
        report: dict[str, Any] = {}
        spent: dict[str, Any] = {}
        for section, wanted in _wanted(desired):
            statuses, applied, secrets = await self._apply_section(session, section, SECTIONS[section], wanted)
            report[f"{section}_status"] = statuses
            if applied:
                report[section] = applied
            if secrets:
                spent[section] = secrets
        self.report(report, spent or None)

    async def _apply_section(self, session: ChargerSession, section: str, build: Build, wanted: dict[str, Any],
                             ) -> tuple[dict[str, str], dict[str, Any], dict[str, None]]:
        """Statuses, what was applied, and the secrets among it. A key whose request would not be valid OCPP is
        ``Invalid`` and never sent (these requests skip the back-end requests' validation)."""
        statuses: dict[str, str] = {}
        applied: dict[str, Any] = {}
        secrets: dict[str, None] = {}
        for key, value in wanted.items():
            try:
                operation, payload = build(session.version, key, value)
                validate(session.version, operation, payload, response=False, strict=True)
            except (ValueError, OcppError) as exc:
                statuses[key] = "Invalid"
                log.warning("shadow key refused", extra={"charger_id": session.charger_id, "section": section,
                                                         "error": str(exc)})
                continue
            reply = await session.submit(operation, payload)
            statuses[key], done = outcome(operation, reply)
            if done:
                secret = password_change.new_password(operation, payload) is not None
                applied[key] = password_change.REDACTED if secret else value
                if secret:
                    secrets[key] = None
        return statuses, applied, secrets


def _wanted(desired: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The sections the adapter applies that a delta or document names, with what they ask for."""
    return [(section, wanted) for section in SECTIONS
            if isinstance(wanted := desired.get(section), dict) and wanted]
