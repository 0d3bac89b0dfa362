"""What only the embedded store promises: persistence, WAL, cross-process ids, purge on append."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import timedelta

import pytest

from adapter.store.base import AuditEntry, ChargerRecord, IdTokenRecord, TransactionRecord
from adapter.store.factory import DEFAULT_STORE_URL, open_store, store_url_from_env
from adapter.store.records import now_utc
from adapter.store.sqlite import SqliteStore


def test_chargers_tokens_and_transactions_survive_reopen(tmp_path):
    url = f"sqlite:///{tmp_path}/nested/dir/gw.db"
    store = open_store(url)
    store.upsert_charger(ChargerRecord("CP-1", password_hash="h", security_profile=1, site="s"))
    store.put_id_token(IdTokenRecord("TAG", "Blocked"))
    store.upsert_transaction(TransactionRecord("1", "CP-1", "active", id_token="TAG"))
    assert [store.next_transaction_id() for _ in range(2)] == [1, 2]
    store.close()

    store = open_store(url)
    assert store.get_charger("CP-1") == ChargerRecord("CP-1", password_hash="h", security_profile=1, site="s")
    assert store.get_id_token("TAG") == IdTokenRecord("TAG", "Blocked")
    assert store.get_transaction("1") == TransactionRecord("1", "CP-1", "active", id_token="TAG")
    assert store.next_transaction_id() == 3
    store.close()


def test_a_file_from_an_older_release_gains_the_new_columns(tmp_path):
    """Fields added to a record since a file was written must not make the embedded store unusable."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE chargers (charger_id TEXT, password_hash TEXT, security_profile INTEGER, "
                   "site TEXT, vendor TEXT, model TEXT, serial TEXT, firmware TEXT, ocpp_version TEXT, "
                   "default_limits TEXT, configuration TEXT, first_seen TEXT, last_seen TEXT, "
                   "PRIMARY KEY (charger_id))")
        db.execute("INSERT INTO chargers (charger_id, security_profile, serial, default_limits, configuration) "
                   "VALUES ('CP-1', 1, 'SN', '{}', '{}')")
    store = SqliteStore(path)
    assert store.get_charger("CP-1") == ChargerRecord("CP-1", security_profile=1, serial="SN")
    assert store.update_charger("CP-1", boot_status="Accepted", reported_serial="SN-2")
    record = store.get_charger("CP-1")
    assert (record.boot_status, record.reported_serial, record.serial) == ("Accepted", "SN-2", "SN")
    store.close()


def test_file_store_uses_wal(tmp_path):
    SqliteStore(tmp_path / "gw.db").close()
    with sqlite3.connect(tmp_path / "gw.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _allocate(url: str, count: int, barrier, results) -> None:
    store = open_store(url)
    barrier.wait()
    results.put([store.next_transaction_id() for _ in range(count)])
    store.close()


def test_transaction_ids_are_unique_across_processes(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.db"
    open_store(url).close()  # create the schema once, so the race is only about the counter
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_allocate, args=(url, 200, barrier, results)) for _ in range(3)]
    for p in procs:
        p.start()
    batches = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    ids = [i for batch in batches for i in batch]
    assert sorted(ids) == list(range(1, 601))


def _audit(age_s: float) -> AuditEntry:
    return AuditEntry(now_utc() - timedelta(seconds=age_s), "CP-1", "in", 2, f"m{age_s}", "Heartbeat", "[]")


def _rows(store: SqliteStore) -> int:
    return len(store._query("SELECT seq FROM messages"))


def test_expired_audit_rows_are_deleted_on_append(tmp_path):
    store = SqliteStore(tmp_path / "gw.db", audit_ttl_s=60, audit_purge_interval_s=0)
    store.append_audit([_audit(120), _audit(0)])
    store.append_audit([_audit(90)])
    assert _rows(store) == 1
    store.close()


def test_purge_runs_at_most_once_per_interval(tmp_path):
    store = SqliteStore(tmp_path / "gw.db", audit_ttl_s=60, audit_purge_interval_s=3600)
    store.append_audit([_audit(120)])  # the first append purges
    store.append_audit([_audit(120)])  # within the interval: kept until the next purge
    assert _rows(store) == 1
    store.close()


def test_default_url_is_the_embedded_file_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert store_url_from_env({}) == DEFAULT_STORE_URL
    open_store(store_url_from_env({})).close()
    assert (tmp_path / "var" / "ocpp-gateway.db").is_file()


def test_store_url_comes_from_env():
    assert store_url_from_env({"STORE_URL": "memory://"}) == "memory://"


@pytest.mark.parametrize("url", ["postgres://u:s3cret@db/x", "sqlite:///", "sqlite://rel.db", "", "memory"])
def test_unsupported_urls_are_refused_without_echoing_credentials(url):
    with pytest.raises(ValueError, match="unsupported store URL") as err:
        open_store(url)
    assert "s3cret" not in str(err.value)


def test_bad_audit_ttl_is_refused():
    with pytest.raises(ValueError, match="audit_ttl_s"):
        open_store("memory://", audit_ttl_s=0)


def test_audit_batches_of_any_size_share_a_few_statement_shapes(tmp_path, monkeypatch):
    """One statement per distinct batch size would fill sqlite3's statement cache (~20 MB per process)."""
    shapes: set[str] = set()
    real = SqliteStore._insert_sql

    def recording(table, row, count=1):
        sql = real(table, row, count)
        shapes.add(sql)
        return sql

    monkeypatch.setattr(SqliteStore, "_insert_sql", staticmethod(recording))
    store = SqliteStore(tmp_path / "gw.db")
    sizes = range(1, 700)
    for size in sizes:
        store.append_audit([_audit(0) for _ in range(size)])
    assert _rows(store) == sum(sizes)
    assert len(shapes) <= 9
    store.close()
