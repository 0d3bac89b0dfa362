"""What both store back ends share: the table layout and the record <-> row codec.

Both back ends keep the same logical shape so the contract suite can hold them to one behaviour: every
table is described once here (key, indexes, which fields hold datetimes or free-form JSON), and the
back ends only translate that description into their own storage.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Generic, TypeVar

import orjson

from adapter.store.base import (
    AuditEntry,
    ChargerRecord,
    ConnectionRecord,
    IdTokenRecord,
    OutboxItem,
    TransactionRecord,
)

DEFAULT_AUDIT_TTL_S = 7 * 24 * 3600
TRANSACTION_COUNTER = "transaction_id"

R = TypeVar("R")
Row = dict[str, Any]


def utc_ms(value: datetime) -> datetime:
    """Normalise to aware UTC at millisecond precision, the finest a BSON date keeps.

    Applying it on every write makes both back ends return exactly what the other would; naive
    datetimes are taken to be UTC already.
    """
    value = _as_utc(value)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now_utc() -> datetime:
    return utc_ms(datetime.now(UTC))


@dataclass(frozen=True)
class Table(Generic[R]):
    """One collection/table: its record type, primary key and secondary indexes."""

    name: str
    record: type[R]
    key: str | None  # None: rows get a store-generated key (audit log)
    indexes: tuple[tuple[str, ...], ...] = ()
    ttl_field: str | None = None

    @cached_property
    def fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.record))  # type: ignore[arg-type]

    @cached_property
    def field_types(self) -> dict[str, Any]:
        """Field name -> its type without ``| None`` or type arguments."""
        return {n: _base_type(t) for n, t in typing.get_type_hints(self.record).items()}

    @cached_property
    def datetime_fields(self) -> frozenset[str]:
        return frozenset(n for n, t in self.field_types.items() if t is datetime)

    @cached_property
    def json_fields(self) -> frozenset[str]:
        """Free-form structures (charger payloads, configuration) are kept as JSON text.

        Charger-supplied keys may start with ``$`` or contain dots, which older MongoDB servers and
        DocumentDB refuse or read as operators; text keeps them inert and round-trips them exactly.
        """
        return frozenset(n for n, t in self.field_types.items() if t in (dict, Any))


def _base_type(hint: Any) -> Any:
    """``X | None`` -> X, ``dict[str, Any]`` -> dict; anything else unchanged."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint = args[0]
    return typing.get_origin(hint) or hint


CHARGERS: Table[ChargerRecord] = Table("chargers", ChargerRecord, "charger_id", (("site",), ("serial",)))
# Indexes that serve a sorted listing end with the key, the listing's tie-break (see TabularStore._all).
CONNECTIONS: Table[ConnectionRecord] = Table(
    "connections", ConnectionRecord, "connection_id", (("charger_id", "started_at", "connection_id"),)
)
TRANSACTIONS: Table[TransactionRecord] = Table(
    "transactions", TransactionRecord, "transaction_id",
    (("charger_id", "state"), ("id_token",), ("started_at",)),
)
ID_TOKENS: Table[IdTokenRecord] = Table("id_tokens", IdTokenRecord, "token", (("parent_id",),))
MESSAGES: Table[AuditEntry] = Table("messages", AuditEntry, None, (("charger_id", "at"),), ttl_field="at")
OUTBOX: Table[OutboxItem] = Table("outbox", OutboxItem, "item_id", (("created_at", "item_id"),))
TABLES: tuple[Table[Any], ...] = (CHARGERS, CONNECTIONS, TRANSACTIONS, ID_TOKENS, MESSAGES, OUTBOX)


def to_row(table: Table[Any], record: object, *, dt_text: bool = False) -> Row:
    """Record -> flat row: UTC-ms datetimes (ISO text when ``dt_text``), structures as JSON text.

    Written as one loop over the fields: the audit log runs every frame through it, twice per message, on the
    store thread that shares the GIL with the event loop.
    """
    dts, js = table.datetime_fields, table.json_fields
    out: Row = {}
    for name in table.fields:
        out[name] = _encode(name, getattr(record, name), dts, js, dt_text)
    return out


def encode_fields(table: Table[Any], values: Row, *, dt_text: bool = False) -> Row:
    dts, js = table.datetime_fields, table.json_fields
    return {name: _encode(name, value, dts, js, dt_text) for name, value in values.items()}


def _encode(name: str, value: Any, dts: frozenset[str], js: frozenset[str], dt_text: bool) -> Any:
    if name in dts:
        if value is None:
            return None
        if dt_text:  # isoformat truncates to the millisecond itself
            return _as_utc(value).isoformat(timespec="milliseconds")
        return utc_ms(value)
    if name in js:
        return orjson.dumps(value).decode()
    return value


def from_row(table: Table[R], row: Row) -> R:
    dts, js = table.datetime_fields, table.json_fields
    values: Row = {}
    for name in table.fields:
        value = row.get(name)
        if name in dts and value is not None:
            value = utc_ms(datetime.fromisoformat(value) if isinstance(value, str) else value)
        elif name in js and value is not None:
            value = orjson.loads(value)
        values[name] = value
    return table.record(**values)


def charger_changes(fields: Row, *, dt_text: bool = False) -> Row:
    """Validate ``update_charger`` keyword fields and encode them as a partial row."""
    unknown = set(fields) - set(CHARGERS.fields)
    if unknown:
        raise ValueError(f"cannot update charger field(s): {', '.join(sorted(unknown))}")
    return encode_fields(CHARGERS, fields, dt_text=dt_text)
