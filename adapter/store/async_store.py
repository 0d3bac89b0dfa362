"""The event loop's view of the store: every call runs on dedicated threads, never on the loop. A
single-writer store (sqlite) gets one thread that commits calls queued together as one transaction
(``GroupCommitWorker``); others a pool of ``max_workers`` threads.

The audit log is on the per-message hot path, so ``audit()`` only appends to an in-memory buffer and a
background task writes it in batches. The buffer is bounded: if the store falls behind, the oldest
entries are dropped and counted (``audit_dropped``, and the ``Errors`` metric with Kind ``audit_dropped``, so
an alarm sees it) rather than letting memory grow without limit.
Batches are large (up to 2,000 entries, at least once a second) because each commit costs the embedded
store as much as a few hundred rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from adapter.observability import names
from adapter.observability.metrics import METRICS
from adapter.store.base import (
    AuditEntry,
    Batching,
    ChargerRecord,
    ConnectionRecord,
    IdTokenRecord,
    OutboxItem,
    Store,
    TransactionRecord,
)
from adapter.store.group_commit import GroupCommitWorker

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore:
    def __init__(self, store: Store, *, audit_enabled: bool = True, audit_batch: int = 2000,
                 audit_interval_s: float = 1.0, audit_buffer: int = 100_000,
                 workers: int | None = None) -> None:
        if audit_batch < 1 or audit_buffer < audit_batch or audit_interval_s <= 0:
            raise ValueError("need audit_batch >= 1, audit_buffer >= audit_batch and audit_interval_s > 0")
        self.store = store
        self.audit_enabled = audit_enabled
        self.audit_dropped = 0
        self._batch = audit_batch
        self._interval = audit_interval_s
        self._buffer: deque[AuditEntry] = deque(maxlen=audit_buffer)
        self._failed: list[AuditEntry] = []  # a batch whose write failed goes again before newer ones
        self._failing = False
        self._overflowing = False  # logged once per episode, until a flush empties the buffer
        threads = workers or store.max_workers
        self._executor: ThreadPoolExecutor | GroupCommitWorker = (
            GroupCommitWorker(store.batch) if threads == 1 and isinstance(store, Batching)
            else ThreadPoolExecutor(max_workers=threads, thread_name_prefix="store"))
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._closing = False
        self._flusher: asyncio.Task[None] | None = None

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the store's thread: a sequence of store calls passed as one function waits its turn
        there once, not once per call."""
        future: Future[T] = self._executor.submit(functools.partial(fn, *args, **kwargs))
        return await asyncio.wrap_future(future)

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.audit_enabled and self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop(), name="audit-flusher")

    async def close(self) -> None:
        """Write what is still buffered, then close the underlying store."""
        self._closing = True
        self._wake.set()
        if self._flusher is not None:
            await self._flusher
        try:
            await self.flush()
        except Exception:
            log.exception("audit: %d entries lost at close", len(self._failed) + len(self._buffer))
        await asyncio.to_thread(self._executor.shutdown)
        await asyncio.to_thread(self.store.close)

    # -- audit log ----------------------------------------------------------------------------------
    def audit(self, entry: AuditEntry) -> None:
        """Queue an audit entry; O(1) and never blocks."""
        if not self.audit_enabled:
            return
        buffer = self._buffer
        if len(buffer) == buffer.maxlen:
            self._dropped(1)
            if not self._overflowing:
                self._overflowing = True
                log.warning("audit: buffer full (%d entries), dropping the oldest until the store catches up",
                            len(buffer))
        buffer.append(entry)
        if len(buffer) >= self._batch:
            self._wake.set()

    @property
    def audit_buffered(self) -> int:
        return len(self._buffer) + len(self._failed)

    async def flush(self) -> None:
        """Write every buffered entry. On a store error the batch is kept for the next attempt and the
        error raised; a batch the store cannot encode is dropped (and counted) instead."""
        async with self._flush_lock:
            while self._failed or self._buffer:
                if not self._failed:
                    take = min(self._batch, len(self._buffer))
                    self._failed = [self._buffer.popleft() for _ in range(take)]
                try:
                    await self.call(self.store.append_audit, self._failed)
                except (TypeError, ValueError):  # an entry that cannot be encoded will never succeed
                    log.exception("audit: dropping a batch of %d unencodable entries", len(self._failed))
                    self._dropped(len(self._failed))
                self._failed = []
            self._overflowing = False

    def _dropped(self, count: int) -> None:
        self.audit_dropped += count
        METRICS.inc(names.ERRORS, count, Kind="audit_dropped")

    async def _flush_loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                if not self._failing:
                    log.warning("audit: store write failed; retrying every %gs", self._interval,
                                exc_info=True)
                self._failing = True
            else:
                if self._failing:
                    log.info("audit: store writes recovered")
                self._failing = False

    # -- chargers -----------------------------------------------------------------------------------
    async def get_charger(self, charger_id: str) -> ChargerRecord | None:
        return await self.call(self.store.get_charger, charger_id)

    async def upsert_charger(self, record: ChargerRecord) -> None:
        await self.call(self.store.upsert_charger, record)

    async def create_charger(self, record: ChargerRecord) -> bool:
        return await self.call(self.store.create_charger, record)

    async def update_charger(self, charger_id: str, **fields: Any) -> bool:
        return await self.call(self.store.update_charger, charger_id, **fields)

    async def remove_charger(self, charger_id: str) -> bool:
        return await self.call(self.store.remove_charger, charger_id)

    async def list_chargers(self) -> list[ChargerRecord]:
        return await self.call(self.store.list_chargers)

    # -- sessions -----------------------------------------------------------------------------------
    async def record_connection(self, record: ConnectionRecord) -> None:
        await self.call(self.store.record_connection, record)

    async def close_connection(self, connection_id: str, ended_at: datetime, code: int | None,
                               reason: str | None) -> None:
        await self.call(self.store.close_connection, connection_id, ended_at, code, reason)

    async def list_connections(self, charger_id: str, limit: int = 20) -> list[ConnectionRecord]:
        return await self.call(self.store.list_connections, charger_id, limit)

    # -- transactions -------------------------------------------------------------------------------
    async def next_transaction_id(self) -> int:
        return await self.call(self.store.next_transaction_id)

    async def upsert_transaction(self, record: TransactionRecord) -> None:
        await self.call(self.store.upsert_transaction, record)

    async def get_transaction(self, transaction_id: str) -> TransactionRecord | None:
        return await self.call(self.store.get_transaction, transaction_id)

    async def active_transactions(self, charger_id: str) -> list[TransactionRecord]:
        return await self.call(self.store.active_transactions, charger_id)

    # -- local authorization list -------------------------------------------------------------------
    async def get_id_token(self, token: str) -> IdTokenRecord | None:
        return await self.call(self.store.get_id_token, token)

    async def put_id_token(self, record: IdTokenRecord) -> None:
        await self.call(self.store.put_id_token, record)

    async def remove_id_token(self, token: str) -> bool:
        return await self.call(self.store.remove_id_token, token)

    async def list_id_tokens(self) -> list[IdTokenRecord]:
        return await self.call(self.store.list_id_tokens)

    # -- audit log reads and direct writes ----------------------------------------------------------
    async def append_audit(self, entries: list[AuditEntry]) -> None:
        await self.call(self.store.append_audit, entries)

    async def list_audit(self, charger_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        return await self.call(self.store.list_audit, charger_id, limit)

    # -- outbox -------------------------------------------------------------------------------------
    async def outbox_put(self, item: OutboxItem) -> None:
        await self.call(self.store.outbox_put, item)

    async def outbox_pending(self, limit: int) -> list[OutboxItem]:
        return await self.call(self.store.outbox_pending, limit)

    async def outbox_delete(self, item_ids: list[str]) -> None:
        await self.call(self.store.outbox_delete, item_ids)
