"""``python -m adapter.store.bench``: what the store costs the event loop, per back end.

Reports the time of one ``AsyncStore.audit()`` call (paid on the loop for every OCPP message), the
throughput of the background audit flush, and the round trip of an awaited lookup (paid per handshake).
mongomock rescans its indexes on every insert, so its flush rate falls as the log grows: it is run on
fewer entries and stands for the call overhead only, not for a MongoDB server. With MONGODB_URI set, a
real server is measured too (in a scratch database that is dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
from pymongo import MongoClient

from adapter.store.async_store import AsyncStore
from adapter.store.base import AuditEntry, ChargerRecord, Store
from adapter.store.mongo import Document, MongoStore
from adapter.store.records import now_utc
from adapter.store.sqlite import SqliteStore

FRAME = orjson.dumps([2, "msg-1", "MeterValues", {
    "connectorId": 1, "transactionId": 42,
    "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [
        {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        {"value": "16.0", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
    ]}],
}]).decode()


async def measure(store: Store, entries: int, lookups: int) -> dict[str, float]:
    astore = AsyncStore(store, audit_batch=min(500, entries), audit_buffer=entries)
    entry = AuditEntry(now_utc(), "CP-1", "in", 2, "msg-1", "MeterValues", FRAME)
    started = time.perf_counter()
    for _ in range(entries):
        astore.audit(entry)
    audit_s = time.perf_counter() - started

    started = time.perf_counter()
    await astore.flush()
    flush_s = time.perf_counter() - started

    await astore.upsert_charger(ChargerRecord("CP-1"))
    started = time.perf_counter()
    for _ in range(lookups):
        await astore.get_charger("CP-1")
    lookup_s = time.perf_counter() - started
    await astore.close()
    return {
        "audit_call_us": audit_s / entries * 1e6,
        "flush_entries_per_s": entries / flush_s,
        "get_charger_us": lookup_s / lookups * 1e6,
    }


def _mongomock() -> Store:
    import mongomock  # a test dependency, needed only by this benchmark

    return MongoStore(mongomock.MongoClient(tz_aware=True)["bench"])


def _mongodb(uri: str, database: str) -> Store:
    return MongoStore(MongoClient(uri, tz_aware=True)[database])


def _drop(uri: str, database: str) -> None:
    client: MongoClient[Document] = MongoClient(uri)
    with client:
        client.drop_database(database)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapter.store.bench", description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000, help="audit entries (sqlite, MongoDB)")
    parser.add_argument("--mock-entries", type=int, default=2_000, help="audit entries for mongomock")
    parser.add_argument("--lookups", type=int, default=2_000, help="awaited get_charger calls per back end")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    uri = os.environ.get("MONGODB_URI")
    scratch = f"ocpp_bench_{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory() as tmp:
        backends: list[tuple[str, Callable[[], Store], int]] = [
            ("sqlite", lambda: SqliteStore(Path(tmp) / "bench.db"), args.entries),
            ("mongomock", _mongomock, args.mock_entries),
        ]
        if uri:
            backends.append(("mongodb", lambda: _mongodb(uri, scratch), args.entries))
        try:
            results = {name: asyncio.run(measure(make(), entries, args.lookups))
                       for name, make, entries in backends}
        finally:
            if uri:
                _drop(uri, scratch)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'store':<10} {'audit() us/call':>16} {'flush entries/s':>16} {'get_charger us':>15}")
        for name, r in results.items():
            print(f"{name:<10} {r['audit_call_us']:>16.3f} {r['flush_entries_per_s']:>16,.0f} "
                  f"{r['get_charger_us']:>15.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
