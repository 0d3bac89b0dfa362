"""A charger's lifecycle event, built in one place for its session and for the instance that speaks for a crashed one.

The event id comes from the session id, the event and ``occasion``: several instances speaking for the same lost
session give one id (consumers de-duplicate on it), while a session that says ``connected`` again after being
declared lost gives a new one, which de-duplication must not swallow.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

from adapter.bus.envelope import Origin, encode, envelope
from adapter.normalize.events import EventDraft
from adapter.ocpp.timestamps import now_iso

# The reason a live instance gives when it ends, for the record, a session a crashed instance held.
ADAPTER_LOST = "adapter lost"


class Claim(NamedTuple):
    """What a charger's last ``connected`` said: the instance holding it, and enough to end that session. Every
    worker keeps one per charger of the fleet, so it holds no more than that (about 250 bytes)."""

    holder: str
    session_id: str
    ocpp_version: str
    received_at: str


def claim_of(event: dict[str, Any]) -> Claim:
    """Raises KeyError or TypeError for an event that is not a lifecycle envelope."""
    return Claim(sys.intern(event["adapter_id"]), event["data"]["session_id"], sys.intern(event["ocpp_version"]),
                 event["received_at"])


def lifecycle_event(charger_id: str, ocpp_version: str, adapter_id: str, session_id: str, event: str,
                    reason: str | None, remote_address: str | None, close_code: int | None,
                    occasion: str = "", timestamp: str | None = None) -> bytes:
    """``timestamp``: when it happened, if not now."""
    draft = EventDraft("lifecycle", "lifecycle", {"event": event, "reason": reason, "session_id": session_id,
                                                  "remote_address": remote_address, "close_code": close_code},
                       timestamp)
    origin = Origin(charger_id, ocpp_version, adapter_id, now_iso(), f"{session_id}/{event}{occasion}".encode())
    return encode(envelope(draft, origin, 0, []))


def disconnected(reason: str | None, close_code: int | None, since: str | None = None) -> dict[str, Any]:
    """The shadow's reported ``connection`` once the charger has gone (``since`` now, unless given)."""
    return {"state": "disconnected", "reason": reason, "close_code": close_code, "since": since or now_iso()}


def lost(charger_id: str, claim: Claim, since: str) -> bytes:
    """The end of a crashed instance's session, in that instance's name, dated when the instance was heard
    going offline: every instance then drops the claim as it would after the session's own ``disconnected``."""
    return lifecycle_event(charger_id, claim.ocpp_version, claim.holder, claim.session_id, "disconnected",
                           ADAPTER_LOST, None, None, f"/{claim.received_at}", since)
