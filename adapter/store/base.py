"""The store seam: everything the adapter persists goes through this interface.

Implementations are synchronous (plain pymongo / sqlite3); the event loop reaches them only through
``AsyncStore`` (see ``adapter/store/async_store.py``), which runs calls off-loop and batches the audit log.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass
class ChargerRecord:
    charger_id: str
    password_hash: str | None = None
    security_profile: int = 0
    site: str | None = None
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    reported_serial: str | None = None  # what the charger's boot says; ``serial`` is the operator's, trusted
    ocpp_version: str | None = None
    boot_status: str | None = None  # the last BootNotification answer: a reconnect without reboot keeps it
    default_limits: dict[str, Any] = field(default_factory=dict)
    configuration: dict[str, Any] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None


@dataclass
class IdTokenRecord:
    token: str
    status: str = "Accepted"
    expires_at: datetime | None = None
    parent_id: str | None = None


@dataclass
class ConnectionRecord:
    connection_id: str
    charger_id: str
    started_at: datetime
    remote_address: str | None
    ocpp_version: str | None
    adapter_id: str
    ended_at: datetime | None = None
    close_code: int | None = None
    close_reason: str | None = None


@dataclass
class TransactionRecord:
    transaction_id: str  # transaction_key(charger_id, the id on the wire)
    charger_id: str
    state: str  # "active" | "ended"
    id_token: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    meter_start_wh: float | None = None
    meter_stop_wh: float | None = None
    energy_wh: float | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None


def transaction_key(charger_id: str, transaction_id: str) -> str:
    """2.x transaction ids are the charger's own and may repeat across chargers."""
    return f"{charger_id}/{transaction_id}"


@dataclass
class AuditEntry:
    """One OCPP-J frame as it crossed the wire.

    The frame is kept as the text itself, not a parsed payload: that is what a dispute needs (lenient mode
    normalizes what it accepts), and a string costs nothing to keep while the entry waits for its batch,
    where a parsed payload is a tree of objects the garbage collector keeps scanning.
    """

    at: datetime
    charger_id: str
    direction: str  # "in" | "out"
    message_type: int
    message_id: str
    action: str | None
    frame: str


@dataclass
class OutboxItem:
    item_id: str
    topic: str
    payload: bytes
    created_at: datetime


class Store(Protocol):
    """Synchronous store API. Every method may be called from a worker thread."""

    #: how many threads may usefully call the store at once (1 for sqlite)
    max_workers: int

    # chargers
    def get_charger(self, charger_id: str) -> ChargerRecord | None: ...
    def upsert_charger(self, record: ChargerRecord) -> None: ...
    def create_charger(self, record: ChargerRecord) -> bool:
        """Insert only if the id is new (False otherwise): registration must never overwrite a
        record an operator created concurrently, credentials included."""
        ...
    def update_charger(self, charger_id: str, **fields: Any) -> bool: ...
    def remove_charger(self, charger_id: str) -> bool: ...
    def list_chargers(self) -> list[ChargerRecord]: ...

    # sessions
    def record_connection(self, record: ConnectionRecord) -> None: ...
    def close_connection(self, connection_id: str, ended_at: datetime, code: int | None,
                         reason: str | None) -> None: ...
    def list_connections(self, charger_id: str, limit: int = 20) -> list[ConnectionRecord]:
        """Newest first."""
        ...

    # transactions
    def next_transaction_id(self) -> int: ...
    def upsert_transaction(self, record: TransactionRecord) -> None: ...
    def get_transaction(self, transaction_id: str) -> TransactionRecord | None: ...
    def active_transactions(self, charger_id: str) -> list[TransactionRecord]:
        """Oldest start first."""
        ...

    # local authorization list
    def get_id_token(self, token: str) -> IdTokenRecord | None: ...
    def put_id_token(self, record: IdTokenRecord) -> None: ...
    def remove_id_token(self, token: str) -> bool: ...
    def list_id_tokens(self) -> list[IdTokenRecord]: ...

    # audit log (batched by the caller)
    def append_audit(self, entries: list[AuditEntry]) -> None: ...
    def list_audit(self, charger_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first, without entries older than the store's TTL."""
        ...

    # durable outbox of events awaiting MQTT hand-off
    def outbox_put(self, item: OutboxItem) -> None: ...
    def outbox_pending(self, limit: int) -> list[OutboxItem]: ...
    def outbox_delete(self, item_ids: list[str]) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Batching(Protocol):
    """A single-writer store that can run several calls as one transaction (``GroupCommitWorker``)."""

    def batch(self) -> AbstractContextManager[object]:
        """Calls inside commit together; if the block raises, none of their writes is kept."""
        ...
