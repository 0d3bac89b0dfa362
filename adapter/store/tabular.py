"""The Store API written once over a handful of table primitives that each back end supplies.

Keeping the mapping from records to rows here means MongoDB and sqlite cannot drift apart in behaviour:
they differ only in how they get, put, find and count rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any

from adapter.store.base import (
    AuditEntry,
    ChargerRecord,
    ConnectionRecord,
    IdTokenRecord,
    OutboxItem,
    TransactionRecord,
)
from adapter.store.records import (
    CHARGERS,
    CONNECTIONS,
    DEFAULT_AUDIT_TTL_S,
    ID_TOKENS,
    MESSAGES,
    OUTBOX,
    TRANSACTION_COUNTER,
    TRANSACTIONS,
    R,
    Row,
    Table,
    charger_changes,
    encode_fields,
    from_row,
    now_utc,
    to_row,
)


class TabularStore(ABC):
    """Implements ``adapter.store.base.Store``; subclasses provide the primitives below."""

    #: threads that may call this store at once (``AsyncStore`` sizes its pool from it)
    max_workers: int = 1
    #: sqlite keeps datetimes as ISO-8601 text, MongoDB as native dates
    dt_text: bool = False

    def __init__(self, *, audit_ttl_s: int = DEFAULT_AUDIT_TTL_S) -> None:
        if audit_ttl_s <= 0:
            raise ValueError("audit_ttl_s must be positive")
        self.audit_ttl_s = audit_ttl_s

    # -- primitives ---------------------------------------------------------------------------------
    @abstractmethod
    def _get(self, table: Table[Any], key: str) -> Row | None: ...

    @abstractmethod
    def _put(self, table: Table[Any], row: Row) -> None:
        """Insert or replace the row with the same key."""

    @abstractmethod
    def _insert(self, table: Table[Any], row: Row) -> bool:
        """Insert unless the key exists; False when it did."""

    @abstractmethod
    def _insert_many(self, table: Table[Any], rows: list[Row]) -> None: ...

    @abstractmethod
    def _update(self, table: Table[Any], key: str, changes: Row) -> bool:
        """Set some fields of an existing row; False when there is none."""

    @abstractmethod
    def _delete(self, table: Table[Any], keys: list[str]) -> int: ...

    @abstractmethod
    def _find(self, table: Table[Any], where: Row, *, sort: list[str], descending: bool,
              since: datetime | None, limit: int | None) -> list[Row]:
        """Rows whose fields equal ``where`` and whose TTL field is >= ``since``, sorted by ``sort``."""

    @abstractmethod
    def _next_counter(self, name: str) -> int:
        """Atomically increment and return a named counter, across threads, processes and hosts."""

    @abstractmethod
    def close(self) -> None: ...

    # -- helpers ------------------------------------------------------------------------------------
    def _row(self, table: Table[Any], record: object) -> Row:
        return to_row(table, record, dt_text=self.dt_text)

    def _one(self, table: Table[R], key: str) -> R | None:
        row = self._get(table, key)
        return None if row is None else from_row(table, row)

    def _all(self, table: Table[R], where: Row, *, order_by: str, descending: bool = False,
             since: datetime | None = None, limit: int | None = None) -> list[R]:
        """Sorted by ``order_by`` and then by the key, so equal timestamps still list in a stable order."""
        sort = [order_by] + ([table.key] if table.key and table.key != order_by else [])
        rows = self._find(table, where, sort=sort, descending=descending, since=since, limit=limit)
        return [from_row(table, row) for row in rows]

    # -- chargers -----------------------------------------------------------------------------------
    def get_charger(self, charger_id: str) -> ChargerRecord | None:
        return self._one(CHARGERS, charger_id)

    def upsert_charger(self, record: ChargerRecord) -> None:
        self._put(CHARGERS, self._row(CHARGERS, record))

    def create_charger(self, record: ChargerRecord) -> bool:
        return self._insert(CHARGERS, self._row(CHARGERS, record))

    def update_charger(self, charger_id: str, **fields: Any) -> bool:
        changes = charger_changes(fields, dt_text=self.dt_text)
        if not changes:
            return self._get(CHARGERS, charger_id) is not None
        return self._update(CHARGERS, charger_id, changes)

    def remove_charger(self, charger_id: str) -> bool:
        return self._delete(CHARGERS, [charger_id]) > 0

    def list_chargers(self) -> list[ChargerRecord]:
        return self._all(CHARGERS, {}, order_by="charger_id")

    # -- sessions -----------------------------------------------------------------------------------
    def record_connection(self, record: ConnectionRecord) -> None:
        self._put(CONNECTIONS, self._row(CONNECTIONS, record))

    def close_connection(self, connection_id: str, ended_at: datetime, code: int | None,
                         reason: str | None) -> None:
        changes = {"ended_at": ended_at, "close_code": code, "close_reason": reason}
        self._update(CONNECTIONS, connection_id, encode_fields(CONNECTIONS, changes, dt_text=self.dt_text))

    def list_connections(self, charger_id: str, limit: int = 20) -> list[ConnectionRecord]:
        return self._all(CONNECTIONS, {"charger_id": charger_id}, order_by="started_at", descending=True,
                         limit=limit)

    # -- transactions -------------------------------------------------------------------------------
    def next_transaction_id(self) -> int:
        return self._next_counter(TRANSACTION_COUNTER)

    def upsert_transaction(self, record: TransactionRecord) -> None:
        self._put(TRANSACTIONS, self._row(TRANSACTIONS, record))

    def get_transaction(self, transaction_id: str) -> TransactionRecord | None:
        return self._one(TRANSACTIONS, transaction_id)

    def active_transactions(self, charger_id: str) -> list[TransactionRecord]:
        return self._all(TRANSACTIONS, {"charger_id": charger_id, "state": "active"}, order_by="started_at")

    # -- local authorization list -------------------------------------------------------------------
    def get_id_token(self, token: str) -> IdTokenRecord | None:
        return self._one(ID_TOKENS, token)

    def put_id_token(self, record: IdTokenRecord) -> None:
        self._put(ID_TOKENS, self._row(ID_TOKENS, record))

    def remove_id_token(self, token: str) -> bool:
        return self._delete(ID_TOKENS, [token]) > 0

    def list_id_tokens(self) -> list[IdTokenRecord]:
        return self._all(ID_TOKENS, {}, order_by="token")

    # -- audit log ----------------------------------------------------------------------------------
    def append_audit(self, entries: list[AuditEntry]) -> None:
        if entries:
            self._insert_many(MESSAGES, [self._row(MESSAGES, e) for e in entries])

    def list_audit(self, charger_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first; entries past the TTL are hidden even before the store reclaims them."""
        where = {} if charger_id is None else {"charger_id": charger_id}
        return self._all(MESSAGES, where, order_by="at", descending=True, since=self._audit_cutoff(),
                         limit=limit)

    def _audit_cutoff(self) -> datetime:
        return now_utc() - timedelta(seconds=self.audit_ttl_s)

    # -- outbox -------------------------------------------------------------------------------------
    def outbox_put(self, item: OutboxItem) -> None:
        self._put(OUTBOX, self._row(OUTBOX, item))

    def outbox_pending(self, limit: int) -> list[OutboxItem]:
        return self._all(OUTBOX, {}, order_by="created_at", limit=limit)

    def outbox_delete(self, item_ids: list[str]) -> None:
        if item_ids:
            self._delete(OUTBOX, item_ids)
