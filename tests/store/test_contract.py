"""The Store contract, run against every back end (see conftest.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import mongomock
import orjson
import pytest

from adapter.store.base import (
    AuditEntry,
    ChargerRecord,
    ConnectionRecord,
    IdTokenRecord,
    OutboxItem,
    TransactionRecord,
)
from adapter.store.records import DEFAULT_AUDIT_TTL_S, now_utc, utc_ms

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
HOSTILE = {"$where": "1", "a.b": {"$gt": 1}, "ünï": [1, 2.5, None, True, "x"]}


def full_charger(charger_id: str = "CP-1") -> ChargerRecord:
    return ChargerRecord(
        charger_id=charger_id, password_hash="$argon2id$v=19$m=1,t=1,p=1$abc$def", security_profile=2,
        site="site-a", vendor="ACME", model="Fast 50", serial="SN-1", firmware="1.2.3", ocpp_version="2.0.1",
        default_limits={"max_a": 32, "phases": 3}, configuration=HOSTILE, first_seen=T0,
        last_seen=T0 + timedelta(hours=1),
    )


def audit(charger_id: str, at: datetime, message_id: str = "m", frame: str = "") -> AuditEntry:
    return AuditEntry(at=at, charger_id=charger_id, direction="in", message_type=2, message_id=message_id,
                      action="Heartbeat", frame=frame or f'[2,"{message_id}","Heartbeat",{{}}]')


# -- chargers ---------------------------------------------------------------------------------------
def test_charger_round_trips_every_field(store):
    record = full_charger()
    store.upsert_charger(record)
    got = store.get_charger("CP-1")
    assert got == replace(record, first_seen=utc_ms(T0), last_seen=utc_ms(T0 + timedelta(hours=1)))
    assert got.first_seen.tzinfo is not None and got.first_seen.microsecond == 123000


def test_unknown_charger_is_none(store):
    assert store.get_charger("nope") is None


def test_create_charger_never_overwrites(store):
    assert store.create_charger(ChargerRecord("CP-1", password_hash="h1", security_profile=1))
    assert not store.create_charger(ChargerRecord("CP-1"))
    assert store.get_charger("CP-1").password_hash == "h1"


def test_upsert_replaces_whole_record(store):
    store.upsert_charger(full_charger())
    store.upsert_charger(ChargerRecord("CP-1", vendor="Other"))
    assert store.get_charger("CP-1") == ChargerRecord("CP-1", vendor="Other")


def test_update_charger_sets_only_given_fields(store):
    store.upsert_charger(full_charger())
    seen = datetime(2026, 4, 1, tzinfo=UTC)
    assert store.update_charger("CP-1", firmware="2.0", last_seen=seen, configuration={"k": "v"})
    got = store.get_charger("CP-1")
    assert (got.firmware, got.last_seen, got.configuration, got.vendor) == ("2.0", seen, {"k": "v"}, "ACME")


def test_update_charger_reports_missing(store):
    assert not store.update_charger("nope", site="x")
    assert not store.update_charger("nope")
    store.upsert_charger(ChargerRecord("CP-1"))
    assert store.update_charger("CP-1")


def test_update_charger_rejects_unknown_fields(store):
    store.upsert_charger(ChargerRecord("CP-1"))
    with pytest.raises(ValueError, match=r"cannot update charger field.*colour"):
        store.update_charger("CP-1", colour="red")


def test_remove_and_list_chargers(store):
    for cid in ("b", "c", "a"):
        store.upsert_charger(ChargerRecord(cid))
    assert [c.charger_id for c in store.list_chargers()] == ["a", "b", "c"]
    assert store.remove_charger("b")
    assert not store.remove_charger("b")
    assert [c.charger_id for c in store.list_chargers()] == ["a", "c"]


def test_naive_datetimes_are_taken_as_utc(store):
    store.upsert_charger(ChargerRecord("CP-1", first_seen=datetime(2026, 1, 1, 8, 30)))
    assert store.get_charger("CP-1").first_seen == datetime(2026, 1, 1, 8, 30, tzinfo=UTC)


def test_datetimes_in_another_zone_are_stored_as_their_utc_instant(store):
    paris = timezone(timedelta(hours=1))
    store.upsert_charger(ChargerRecord("CP-1", first_seen=datetime(2026, 1, 1, 9, 30, 0, 999999, tzinfo=paris)))
    assert store.get_charger("CP-1").first_seen == datetime(2026, 1, 1, 8, 30, 0, 999000, tzinfo=UTC)


# -- sessions ---------------------------------------------------------------------------------------
def test_connections_record_close_and_list_newest_first(store):
    for i in range(3):
        store.record_connection(ConnectionRecord(f"c{i}", "CP-1", T0 + timedelta(minutes=i), "10.0.0.1",
                                                 "1.6", "adapter-a"))
    store.record_connection(ConnectionRecord("other", "CP-2", T0, None, None, "adapter-b"))
    store.close_connection("c0", T0 + timedelta(minutes=5), 1000, "bye")
    store.close_connection("unknown", T0, None, None)  # a no-op, not an error

    listed = store.list_connections("CP-1")
    assert [c.connection_id for c in listed] == ["c2", "c1", "c0"]
    assert listed[2] == ConnectionRecord("c0", "CP-1", utc_ms(T0), "10.0.0.1", "1.6", "adapter-a",
                                         utc_ms(T0 + timedelta(minutes=5)), 1000, "bye")
    assert [c.connection_id for c in store.list_connections("CP-1", limit=1)] == ["c2"]


# -- transactions -----------------------------------------------------------------------------------
def test_transaction_ids_increase(store):
    ids = [store.next_transaction_id() for _ in range(50)]
    assert ids == sorted(set(ids)) and ids[0] >= 1


def test_transaction_round_trip_and_update(store):
    tx = TransactionRecord("17", "CP-1", "active", id_token="TAG", evse_id=1, connector_id=2,
                           meter_start_wh=100.5, started_at=T0)
    store.upsert_transaction(tx)
    assert store.get_transaction("17") == replace(tx, started_at=utc_ms(T0))
    ended = replace(tx, state="ended", meter_stop_wh=1100.5, energy_wh=1000.0,
                    stopped_at=T0 + timedelta(hours=1), stop_reason="EVDisconnected")
    store.upsert_transaction(ended)
    got = store.get_transaction("17")
    assert (got.state, got.energy_wh, got.stop_reason) == ("ended", 1000.0, "EVDisconnected")
    assert store.get_transaction("18") is None


def test_active_transactions_of_a_charger_oldest_first(store):
    for key, charger, state, minutes in (("CP-1/2", "CP-1", "active", 5), ("CP-1/1", "CP-1", "active", 1),
                                         ("CP-1/0", "CP-1", "ended", 0), ("CP-2/3", "CP-2", "active", 2)):
        store.upsert_transaction(TransactionRecord(key, charger, state, started_at=T0 + timedelta(minutes=minutes)))
    assert [t.transaction_id for t in store.active_transactions("CP-1")] == ["CP-1/1", "CP-1/2"]
    assert store.active_transactions("CP-3") == []


# -- id tokens --------------------------------------------------------------------------------------
def test_id_tokens_crud(store):
    store.put_id_token(IdTokenRecord("B", "Blocked", T0, parent_id="G"))
    store.put_id_token(IdTokenRecord("A"))
    assert store.get_id_token("B") == IdTokenRecord("B", "Blocked", utc_ms(T0), "G")
    store.put_id_token(IdTokenRecord("B", "Accepted"))
    assert store.get_id_token("B") == IdTokenRecord("B", "Accepted")
    assert [t.token for t in store.list_id_tokens()] == ["A", "B"]
    assert store.remove_id_token("A")
    assert not store.remove_id_token("A")
    assert store.get_id_token("A") is None


# -- audit log --------------------------------------------------------------------------------------
def test_audit_append_and_list(store):
    now = now_utc()
    frames = [orjson.dumps([2, "m0", "DataTransfer", HOSTILE]).decode(), '[2,"m1","Heartbeat",{}]',
              "not json at all", '[3,"m3",{"currentTime":"2026-01-01T00:00:00Z"}]  ']
    store.append_audit([audit("CP-1", now - timedelta(seconds=10 - i), f"m{i}", f)
                        for i, f in enumerate(frames)])
    store.append_audit([audit("CP-2", now, "x")])
    store.append_audit([])

    listed = store.list_audit("CP-1")
    assert [e.message_id for e in listed] == ["m3", "m2", "m1", "m0"]
    assert [e.frame for e in reversed(listed)] == frames  # kept exactly, byte for byte
    assert len(store.list_audit()) == 5
    assert [e.message_id for e in store.list_audit(limit=2)] == ["x", "m3"]


def test_a_large_audit_batch_keeps_every_entry_in_order(store):
    """Batches are written in chunks (sqlite: multi-row INSERTs); none may be lost or reordered at a seam."""
    now = now_utc()
    count = 700
    store.append_audit([audit("CP-1", now - timedelta(milliseconds=count - i), f"m{i}")
                        for i in range(count)])
    listed = list(reversed(store.list_audit("CP-1", limit=count + 1)))
    assert [e.message_id for e in listed] == [f"m{i}" for i in range(count)]
    assert [e.frame for e in listed] == [f'[2,"m{i}","Heartbeat",{{}}]' for i in range(count)]


def test_audit_entries_past_ttl_are_not_listed(make_store):
    store = make_store(audit_ttl_s=60)
    now = now_utc()
    store.append_audit([audit("CP-1", now - timedelta(seconds=120), "old"), audit("CP-1", now, "new")])
    assert [e.message_id for e in store.list_audit()] == ["new"]


def test_default_audit_ttl_is_seven_days(store):
    assert store.audit_ttl_s == DEFAULT_AUDIT_TTL_S == 7 * 24 * 3600


# -- outbox -----------------------------------------------------------------------------------------
def test_outbox_is_fifo_by_created_at(store):
    for i, minutes in enumerate([3, 1, 2]):
        store.outbox_put(OutboxItem(f"i{i}", f"ocpp/CP-1/t{i}", b"\x00\xff" + bytes([i]),
                                    T0 + timedelta(minutes=minutes)))
    assert [o.item_id for o in store.outbox_pending(10)] == ["i1", "i2", "i0"]
    first = store.outbox_pending(1)
    assert first == [OutboxItem("i1", "ocpp/CP-1/t1", b"\x00\xff\x01", utc_ms(T0 + timedelta(minutes=1)))]

    store.outbox_delete(["i1", "i2", "missing"])
    store.outbox_delete([])
    assert [o.item_id for o in store.outbox_pending(10)] == ["i0"]


def test_outbox_put_is_idempotent_and_ties_keep_a_stable_order(store):
    for item_id in ("b", "a", "b"):
        store.outbox_put(OutboxItem(item_id, "t", b"p", T0))
    assert [o.item_id for o in store.outbox_pending(10)] == ["a", "b"]


def test_transaction_ids_are_unique_across_threads(store, backend, monkeypatch):
    if backend == "mongomock":
        # mongomock runs commands without the server's per-document atomicity; give it that, so the test
        # checks what matters here: each id comes from one atomic command, not a read-modify-write.
        lock = threading.Lock()
        original = mongomock.collection.Collection.find_one_and_update

        def atomic(self, *args, **kwargs):
            with lock:
                return original(self, *args, **kwargs)

        monkeypatch.setattr(mongomock.collection.Collection, "find_one_and_update", atomic)

    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda _: [store.next_transaction_id() for _ in range(200)], range(8)))
    ids = [i for batch in batches for i in batch]
    assert len(set(ids)) == len(ids) == 1600
    assert all(batch == sorted(batch) for batch in batches)
