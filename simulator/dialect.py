"""What the OCPP 1.6 and 2.x dialects share: request dispatch, triggered messages and common answers."""

from __future__ import annotations

from collections.abc import Callable

from simulator.model import Dialect, Message, Payload, Station
from simulator.profiles import Profile
from simulator.protocol import Reply

VENDOR = "OcppSim"

RequestHandler = Callable[[Station, Payload], Payload]


def status(accepted: bool) -> Payload:
    return {"status": "Accepted" if accepted else "Rejected"}


def dispatch(handlers: dict[str, RequestHandler], station: Station, action: str, payload: Payload) -> Payload:
    handler = handlers.get(action)
    if handler is None:
        raise Reply("NotImplemented", f"{action} is not supported")
    return handler(station, payload)


def data_transfer(station: Station, payload: Payload) -> Payload:
    """Echo data sent to our own vendor id; any other vendor is unknown."""
    if payload["vendorId"] != VENDOR:
        return {"status": "UnknownVendorId"}
    return {"status": "Accepted", "data": str(payload.get("data", ""))}


def trigger(station: Station, allowed: frozenset[str], message: str, connector_id: int | None) -> Payload:
    if message not in allowed:
        return {"status": "NotImplemented"}
    if connector_id is not None and station.connector(connector_id) is None:
        return {"status": "Rejected"}
    station.trigger(message, connector_id)
    return {"status": "Accepted"}


def set_profile(station: Station, connector_id: int, build: Callable[[], Profile]) -> Payload:
    """Connector 0 / EVSE 0 is the whole charger."""
    if connector_id != 0 and station.connector(connector_id) is None:
        return {"status": "Rejected"}
    return status(station.add_profile(build()))


def triggered(dialect: Dialect, station: Station, message: str, connector_id: int | None) -> list[Message]:
    """The messages a TriggerMessage asks for (those both versions know)."""
    chosen = [c for c in station.connectors if connector_id in (None, c.id)]
    if message == "BootNotification":
        return [dialect.boot(station, "Triggered")]
    if message == "Heartbeat":
        return [("Heartbeat", {})]
    if message == "StatusNotification":
        for c in chosen:
            c.reported = None  # a triggered status is sent even when unchanged
        return [m for c in chosen if (m := dialect.status(station, c)) is not None]
    return [dialect.meter(station, c, "Trigger") for c in chosen]
