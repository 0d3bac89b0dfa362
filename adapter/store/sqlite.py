"""Embedded store: one sqlite file, so the adapter runs with nothing else installed.

WAL mode lets readers proceed while a writer commits, and every write opens with ``BEGIN IMMEDIATE`` so
two processes sharing the file serialise on sqlite's own lock (waiting up to ``busy_timeout``) instead of
failing; that is what keeps the transaction-id counter unique across processes. ``synchronous=NORMAL``
survives process crashes (the adapter's restart case) but may lose the last commits on power loss.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from adapter.store.base import AuditEntry
from adapter.store.records import DEFAULT_AUDIT_TTL_S, MESSAGES, TABLES, Row, Table
from adapter.store.tabular import TabularStore

MEMORY = ":memory:"
_AUTO_KEY = "seq"  # rowid alias for tables without a natural key (the audit log)
_COLUMN_TYPES = {int: "INTEGER", float: "REAL", bytes: "BLOB"}
_ROWS_PER_INSERT = 256  # 256 x 7 columns < 32,766 variables


def _chunk_sizes(count: int) -> list[int]:
    """Full chunks, then the rest in powers of two: nine statements of fixed shape serve every batch size.
    One statement per distinct rest would fill sqlite3's statement cache (128 entries, up to ~150 KB each:
    ~20 MB per process) and prepare a new one on most flushes."""
    full, rest = divmod(count, _ROWS_PER_INSERT)
    return [_ROWS_PER_INSERT] * full + [1 << bit for bit in range(rest.bit_length() - 1, -1, -1) if rest >> bit & 1]


def _key(table: Table[Any]) -> str:
    return table.key or _AUTO_KEY


def _column(table: Table[Any], name: str) -> str:
    return f"{name} {_COLUMN_TYPES.get(table.field_types[name], 'TEXT')}"


def _schema(table: Table[Any]) -> list[str]:
    cols = [_column(table, name) for name in table.fields]
    if table.key is None:
        cols.insert(0, f"{_AUTO_KEY} INTEGER PRIMARY KEY")
    else:
        cols.append(f"PRIMARY KEY ({table.key})")
    statements = [f"CREATE TABLE IF NOT EXISTS {table.name} ({', '.join(cols)})"]
    indexes = [*table.indexes, *([(table.ttl_field,)] if table.ttl_field else [])]
    for index in indexes:
        name = f"ix_{table.name}_{'_'.join(index)}"
        statements.append(f"CREATE INDEX IF NOT EXISTS {name} ON {table.name} ({', '.join(index)})")
    return statements


def _add_new_columns(db: sqlite3.Connection, table: Table[Any]) -> None:
    """A file written by an older release lacks fields added since; they start out NULL (the default)."""
    present = {row[1] for row in db.execute(f"PRAGMA table_info({table.name})")}
    for name in table.fields:
        if name not in present:
            db.execute(f"ALTER TABLE {table.name} ADD COLUMN {_column(table, name)}")


class SqliteStore(TabularStore):
    """``Store`` on sqlite3; one connection shared by threads under a lock."""

    dt_text = True

    def __init__(self, path: str | Path = MEMORY, *, audit_ttl_s: int = DEFAULT_AUDIT_TTL_S,
                 audit_purge_interval_s: float = 60.0, busy_timeout_s: float = 30.0) -> None:
        super().__init__(audit_ttl_s=audit_ttl_s)
        self.path = str(path)
        self._purge_interval = audit_purge_interval_s
        self._last_purge = float("-inf")
        self._lock = threading.RLock()  # reentrant: the calls of a batch take it inside the batch's hold
        self._batching = False  # inside batch(): writes join its transaction
        self._batch_begun = False
        self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        if self.path != MEMORY:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
            for table in TABLES:
                for statement in _schema(table):
                    db.execute(statement)
                _add_new_columns(db, table)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Calls inside share one transaction, begun at the first write (so a batch of reads never takes
        the write lock other processes wait for); an exception rolls all of it back."""
        with self._lock:
            self._batching = True
            try:
                yield
                if self._batch_begun:
                    self._db.execute("COMMIT")
            except BaseException:
                self._roll_back()
                raise
            finally:
                self._batching = self._batch_begun = False

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._batching:
                if not self._batch_begun:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._batch_begun = True
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._roll_back()
                raise

    def _roll_back(self) -> None:
        """Also after a failed COMMIT, which leaves the transaction open: the next BEGIN would fail."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _get(self, table: Table[Any], key: str) -> Row | None:
        rows = self._query(f"SELECT * FROM {table.name} WHERE {_key(table)} = ?", (key,))  # noqa: S608
        return dict(rows[0]) if rows else None

    def _put(self, table: Table[Any], row: Row) -> None:
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != table.key)
        with self._write() as db:
            db.execute(self._insert_sql(table, row) + f" ON CONFLICT ({_key(table)}) DO UPDATE SET {updates}",
                       tuple(row.values()))

    def _insert(self, table: Table[Any], row: Row) -> bool:
        with self._write() as db:
            return db.execute(self._insert_sql(table, row) + " ON CONFLICT DO NOTHING",
                              tuple(row.values())).rowcount == 1

    def _insert_many(self, table: Table[Any], rows: list[Row]) -> None:
        """Multi-row INSERTs rather than ``executemany``: sqlite3 releases and retakes the GIL around every
        statement step, and a row per step makes the writer thread fight the event loop for it."""
        with self._write() as db:
            start = 0
            for size in _chunk_sizes(len(rows)):
                chunk = rows[start:start + size]
                start += size
                db.execute(self._insert_sql(table, chunk[0], size),
                           [value for row in chunk for value in row.values()])

    @staticmethod
    def _insert_sql(table: Table[Any], row: Row, count: int = 1) -> str:
        values = ", ".join([f"({', '.join('?' * len(row))})"] * count)
        return f"INSERT INTO {table.name} ({', '.join(row)}) VALUES {values}"  # noqa: S608

    def _update(self, table: Table[Any], key: str, changes: Row) -> bool:
        sets = ", ".join(f"{c} = ?" for c in changes)
        with self._write() as db:
            sql = f"UPDATE {table.name} SET {sets} WHERE {_key(table)} = ?"  # noqa: S608
            return db.execute(sql, (*changes.values(), key)).rowcount == 1

    def _delete(self, table: Table[Any], keys: list[str]) -> int:
        with self._write() as db:
            sql = f"DELETE FROM {table.name} WHERE {_key(table)} IN ({', '.join('?' * len(keys))})"  # noqa: S608
            return db.execute(sql, keys).rowcount

    def _find(self, table: Table[Any], where: Row, *, sort: list[str], descending: bool,
              since: datetime | None, limit: int | None) -> list[Row]:
        clauses = [f"{c} = ?" for c in where]
        params: list[Any] = list(where.values())
        if since is not None:
            clauses.append(f"{table.ttl_field} >= ?")
            params.append(since.isoformat(timespec="milliseconds"))
        direction = "DESC" if descending else "ASC"
        sql = f"SELECT * FROM {table.name}"  # noqa: S608
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY " + ", ".join(f"{c} {direction}" for c in sort)
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [dict(r) for r in self._query(sql, params)]

    def _next_counter(self, name: str) -> int:
        with self._write() as db:
            rows = db.execute(
                "INSERT INTO counters (name, value) VALUES (?, 1) "
                "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value", (name,)
            ).fetchall()
        return int(rows[0][0])

    def append_audit(self, entries: list[AuditEntry]) -> None:
        """Also reclaims expired entries, at most once per purge interval (sqlite has no TTL)."""
        super().append_audit(entries)
        now = time.monotonic()
        if now - self._last_purge >= self._purge_interval:
            self._last_purge = now
            cutoff = self._audit_cutoff().isoformat(timespec="milliseconds")
            with self._write() as db:
                db.execute(f"DELETE FROM {MESSAGES.name} WHERE at < ?", (cutoff,))  # noqa: S608

    def close(self) -> None:
        with self._lock:
            self._db.close()
