"""Calls queued behind a busy store thread commit as one sqlite transaction, each with its own outcome."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from adapter.store.base import ChargerRecord, TransactionRecord
from adapter.store.group_commit import GroupCommitWorker
from adapter.store.sqlite import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "gw.db")
    yield store
    store.close()


@pytest.fixture
def statements(store: SqliteStore) -> list[str]:
    seen: list[str] = []
    store._db.set_trace_callback(seen.append)  # what sqlite actually ran, transactions included
    return seen


def queued_behind_a_busy_worker(worker: GroupCommitWorker, calls: list[Any],
                                while_queued: Callable[[list[Future[Any]]], None] | None = None,
                                ) -> list[Future[Any]]:
    """Submit ``calls`` while the worker is stuck in an earlier one, so they all wait in its queue."""
    busy, release = threading.Event(), threading.Event()

    def stuck() -> None:
        busy.set()
        release.wait(10)

    worker.submit(stuck)
    assert busy.wait(10)
    futures = [worker.submit(call) for call in calls]
    if while_queued is not None:
        while_queued(futures)
    release.set()
    return futures


def test_queued_writes_share_one_commit_and_each_gets_its_result(store: SqliteStore,
                                                                   statements: list[str]) -> None:
    worker = GroupCommitWorker(store.batch)
    calls = [lambda i=i: store.upsert_charger(ChargerRecord(f"CP-{i}")) for i in range(20)]
    futures = queued_behind_a_busy_worker(worker, [*calls, store.next_transaction_id, store.next_transaction_id])
    assert [f.result(10) for f in futures] == [None] * 20 + [1, 2]
    worker.shutdown()
    assert statements.count("BEGIN IMMEDIATE") == statements.count("COMMIT") == 1
    assert len(store.list_chargers()) == 20


def test_a_failing_call_fails_alone_and_the_others_take_effect_once(store: SqliteStore, tmp_path: Path) -> None:
    def broken() -> None:
        raise ValueError("no such thing")

    worker = GroupCommitWorker(store.batch)
    futures = queued_behind_a_busy_worker(worker, [
        lambda: store.upsert_charger(ChargerRecord("CP-1")), store.next_transaction_id, broken,
        lambda: store.upsert_transaction(TransactionRecord("7", "CP-1", "active"))])
    assert futures[0].result(10) is None and futures[1].result(10) == 1 and futures[3].result(10) is None
    with pytest.raises(ValueError, match="no such thing"):
        futures[2].result(10)
    worker.shutdown()
    reopened = SqliteStore(tmp_path / "gw.db")  # committed, as another process sees it
    assert [c.charger_id for c in reopened.list_chargers()] == ["CP-1"]
    assert reopened.get_transaction("7") is not None
    assert reopened.next_transaction_id() == 2  # the batch that failed kept nothing: id 1 was given once
    reopened.close()


def test_a_result_is_delivered_only_once_its_write_is_committed(store: SqliteStore, tmp_path: Path) -> None:
    reader = SqliteStore(tmp_path / "gw.db")
    visible: list[bool] = []
    worker = GroupCommitWorker(store.batch)

    def watch(futures: list[Future[Any]]) -> None:  # runs on the worker thread the moment a result is set
        for i, future in enumerate(futures):
            future.add_done_callback(functools.partial(check_visible, f"CP-{i}"))

    def check_visible(charger_id: str, _: Future[Any]) -> None:
        visible.append(reader.get_charger(charger_id) is not None)

    futures = queued_behind_a_busy_worker(worker, [
        lambda i=i: store.upsert_charger(ChargerRecord(f"CP-{i}")) for i in range(5)], watch)
    for future in futures:
        future.result(10)
    worker.shutdown()
    reader.close()
    assert visible == [True] * 5


def test_a_batch_of_reads_takes_no_write_lock_and_cancelled_calls_never_run(store: SqliteStore,
                                                                           statements: list[str]) -> None:
    store.upsert_charger(ChargerRecord("CP-1"))
    statements.clear()
    ran: list[str] = []
    worker = GroupCommitWorker(store.batch)
    cancelled: list[bool] = []
    futures = queued_behind_a_busy_worker(worker, [
        lambda: store.get_charger("CP-1"), lambda: ran.append("cancelled"), lambda: store.get_charger("CP-2")],
        lambda queued: cancelled.append(queued[1].cancel()))
    assert cancelled == [True]
    assert futures[0].result(10) == ChargerRecord("CP-1") and futures[2].result(10) is None
    worker.shutdown()
    assert ran == [] and "BEGIN IMMEDIATE" not in statements


class FailingFirstCommit:
    """The store's connection, except that its first COMMIT fails (as a full disk would make it)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.failed = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("disk I/O error")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def test_a_failed_commit_leaves_no_transaction_open_and_the_calls_succeed_alone(store: SqliteStore,
                                                                                tmp_path: Path) -> None:
    connection = FailingFirstCommit(store._db)
    store._db = connection  # type: ignore[assignment]
    worker = GroupCommitWorker(store.batch)
    futures = queued_behind_a_busy_worker(worker, [
        lambda: store.upsert_charger(ChargerRecord("CP-1")), lambda: store.upsert_charger(ChargerRecord("CP-2"))])
    assert [f.result(10) for f in futures] == [None, None]
    worker.shutdown()
    assert connection.failed and not connection.db.in_transaction
    reopened = SqliteStore(tmp_path / "gw.db")
    assert sorted(c.charger_id for c in reopened.list_chargers()) == ["CP-1", "CP-2"]
    reopened.close()
