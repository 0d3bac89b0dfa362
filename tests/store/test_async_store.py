"""AsyncStore: calls run off the loop; the audit log is buffered, batched, bounded and never lost on close."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from adapter.observability.metrics import METRICS
from adapter.store.async_store import AsyncStore
from adapter.store.base import (
    AuditEntry,
    ChargerRecord,
    ConnectionRecord,
    IdTokenRecord,
    OutboxItem,
    TransactionRecord,
)
from adapter.store.records import now_utc


class Spy:
    """Wraps a store: records the thread of every call, reports audit writes to the loop, can fail."""

    def __init__(self, inner, *, failures: int = 0) -> None:
        self.inner = inner
        self.max_workers = inner.max_workers
        self.threads: dict[str, str] = {}
        self.failures = failures
        self.closed = False
        self.loop = asyncio.get_running_loop()
        self.writes: asyncio.Queue[int] = asyncio.Queue()

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def call(*args, **kwargs):
            self.threads[name] = threading.current_thread().name
            return method(*args, **kwargs)

        return call

    def append_audit(self, entries):
        self.threads["append_audit"] = threading.current_thread().name
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store unreachable")
        self.inner.append_audit(entries)
        self.loop.call_soon_threadsafe(self.writes.put_nowait, len(entries))

    def close(self):
        self.closed = True
        self.inner.close()


def entry(i: int, frame: str = "[2,\"m\",\"Heartbeat\",{}]") -> AuditEntry:
    return AuditEntry(now_utc() - timedelta(seconds=1000 - i), "CP-1", "in", 2, f"m{i}", "Heartbeat", frame)


async def next_write(spy: Spy) -> int:
    return await asyncio.wait_for(spy.writes.get(), timeout=10)


async def test_every_call_runs_on_a_store_thread_not_the_loop(store):
    spy = Spy(store)
    astore = AsyncStore(spy)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    await astore.upsert_charger(ChargerRecord("CP-1"))
    assert not await astore.create_charger(ChargerRecord("CP-1"))
    assert await astore.update_charger("CP-1", site="s")
    assert (await astore.get_charger("CP-1")).site == "s"
    assert [c.charger_id for c in await astore.list_chargers()] == ["CP-1"]
    await astore.record_connection(ConnectionRecord("c1", "CP-1", t0, None, "1.6", "a"))
    await astore.close_connection("c1", t0, 1000, "bye")
    assert (await astore.list_connections("CP-1"))[0].close_code == 1000
    assert await astore.next_transaction_id() == 1
    await astore.upsert_transaction(TransactionRecord("1", "CP-1", "active"))
    assert (await astore.get_transaction("1")).state == "active"
    await astore.put_id_token(IdTokenRecord("TAG"))
    assert await astore.get_id_token("TAG") == IdTokenRecord("TAG")
    assert len(await astore.list_id_tokens()) == 1
    assert await astore.remove_id_token("TAG")
    await astore.append_audit([entry(1)])
    assert len(await astore.list_audit("CP-1")) == 1
    await astore.outbox_put(OutboxItem("o1", "t", b"p", t0))
    assert [o.item_id for o in await astore.outbox_pending(5)] == ["o1"]
    await astore.outbox_delete(["o1"])
    assert await astore.remove_charger("CP-1")
    await astore.close()

    loop_thread = threading.current_thread().name
    assert len(spy.threads) == 21
    assert all(name.startswith("store") and name != loop_thread for name in spy.threads.values())
    assert spy.closed


async def test_audit_is_flushed_as_soon_as_a_batch_is_full(store):
    spy = Spy(store)
    astore = AsyncStore(spy, audit_batch=3, audit_interval_s=3600)
    await astore.start()
    for i in range(3):
        astore.audit(entry(i))
    assert await next_write(spy) == 3
    assert [e.message_id for e in store.list_audit()] == ["m2", "m1", "m0"]
    await astore.close()


async def test_audit_is_flushed_every_interval(store):
    spy = Spy(store)
    astore = AsyncStore(spy, audit_batch=100, audit_interval_s=0.01)
    await astore.start()
    astore.audit(entry(1))
    assert await next_write(spy) == 1
    await astore.close()


def _dropped_metric() -> float:
    prefix = 'ocpp_adapter_errors_total{kind="audit_dropped"} '
    lines = [line for line in METRICS.render_prometheus().splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


async def test_full_buffer_drops_the_oldest_counts_and_warns_once(store, caplog):
    before = _dropped_metric()
    astore = AsyncStore(store, audit_batch=2, audit_buffer=3)
    for i in range(5):
        astore.audit(entry(i))
    assert (astore.audit_dropped, astore.audit_buffered) == (2, 3)
    assert _dropped_metric() - before == 2
    assert caplog.text.count("buffer full") == 1
    await astore.flush()
    assert [e.message_id for e in store.list_audit()] == ["m4", "m3", "m2"]
    for i in range(5, 9):  # a new episode after the store caught up warns again
        astore.audit(entry(i))
    assert caplog.text.count("buffer full") == 2
    await astore.close()


async def test_disabled_audit_writes_nothing(store):
    spy = Spy(store)
    astore = AsyncStore(spy, audit_enabled=False)
    await astore.start()
    astore.audit(entry(1))
    assert astore.audit_buffered == 0
    await astore.close()
    assert "append_audit" not in spy.threads


async def test_close_writes_what_is_buffered(store):
    spy = Spy(store)
    astore = AsyncStore(spy, audit_interval_s=3600)
    await astore.start()
    for i in range(7):
        astore.audit(entry(i))
    await astore.close()
    assert await next_write(spy) == 7
    assert spy.closed


async def test_failed_write_is_retried_before_newer_entries(store):
    spy = Spy(store, failures=1)
    astore = AsyncStore(spy, audit_batch=2)
    for i in range(3):
        astore.audit(entry(i))
    with pytest.raises(ConnectionError):
        await astore.flush()
    assert astore.audit_buffered == 3
    astore.audit(entry(3))
    await astore.flush()
    assert [await next_write(spy) for _ in range(2)] == [2, 2]
    assert [e.message_id for e in reversed(store.list_audit())] == ["m0", "m1", "m2", "m3"]
    await astore.close()


async def test_background_flusher_survives_store_outage(store, caplog):
    caplog.set_level(logging.INFO, logger="adapter.store.async_store")
    spy = Spy(store, failures=2)
    astore = AsyncStore(spy, audit_interval_s=0.01)
    await astore.start()
    astore.audit(entry(1))
    assert await next_write(spy) == 1
    await astore.close()  # waits for the flusher, which logs the recovery after its write returned
    assert "retrying" in caplog.text and "recovered" in caplog.text


async def test_unencodable_entries_are_dropped_not_retried_forever(store):
    astore = AsyncStore(store, audit_batch=1)
    astore.audit(entry(1, frame="\ud800"))  # a lone surrogate: no store can encode it
    astore.audit(entry(2))
    before = _dropped_metric()
    await astore.flush()
    assert astore.audit_dropped == 1
    assert _dropped_metric() - before == 1
    assert [e.message_id for e in store.list_audit()] == ["m2"]
    await astore.close()


@pytest.mark.parametrize("kwargs", [{"audit_batch": 0}, {"audit_batch": 10, "audit_buffer": 5},
                                    {"audit_interval_s": 0}])
def test_bad_audit_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="audit_batch"):
        AsyncStore(object(), **kwargs)
