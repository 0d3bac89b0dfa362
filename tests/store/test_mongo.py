"""What only the MongoDB store promises: indexes (TTL included), URL handling, the counter upsert race."""

from __future__ import annotations

import mongomock
import pytest
from pymongo.errors import DuplicateKeyError, OperationFailure

from adapter.store import mongo
from adapter.store.factory import open_store
from adapter.store.mongo import MongoStore


def _db():
    return mongomock.MongoClient(tz_aware=True)["ocpp"]


def _keys(db, collection: str) -> list[list[str]]:
    return sorted([k for k, _ in info["key"]] for info in db[collection].index_information().values())


def test_collections_are_indexed():
    db = _db()
    MongoStore(db)
    assert _keys(db, "chargers") == [["_id"], ["serial"], ["site"]]
    assert _keys(db, "connections") == [["_id"], ["charger_id", "started_at", "_id"]]
    assert _keys(db, "transactions") == [["_id"], ["charger_id", "state"], ["id_token"], ["started_at"]]
    assert _keys(db, "id_tokens") == [["_id"], ["parent_id"]]
    assert _keys(db, "outbox") == [["_id"], ["created_at", "_id"]]
    assert _keys(db, "messages") == [["_id"], ["at"], ["charger_id", "at"]]
    assert db["messages"].index_information()["at_ttl"]["expireAfterSeconds"] == 7 * 24 * 3600


def test_changed_ttl_replaces_the_index_and_reopening_keeps_it():
    db = _db()
    MongoStore(db, audit_ttl_s=3600)
    MongoStore(db, audit_ttl_s=60)
    MongoStore(db, audit_ttl_s=60)
    assert db["messages"].index_information()["at_ttl"]["expireAfterSeconds"] == 60


class _RacingMessages:
    """The audit collection as one starting worker sees it while others start too (the rest passes through).

    mongomock's errors carry no code; these raise what a MongoDB/DocumentDB server answers.
    """

    def __init__(self, real, *, drop_first: bool = False, old_ttl_creates: int = 0) -> None:
        self.real, self.drop_first, self.old_ttl_creates = real, drop_first, old_ttl_creates

    def drop_index(self, name):
        if self.drop_first:  # another worker saw the same old index and dropped it first
            self.drop_first = False
            self.real.drop_index(name)
            raise OperationFailure(f"index not found with name [{name}]", code=27)
        return self.real.drop_index(name)

    def create_index(self, keys, **kwargs):
        if self.old_ttl_creates and "expireAfterSeconds" in kwargs:  # an instance on the old setting
            self.old_ttl_creates -= 1
            self.real.create_index(keys, **{**kwargs, "expireAfterSeconds": 3600})
            raise OperationFailure(f"Index with name: {kwargs['name']} already exists with different options",
                                   code=85)
        return self.real.create_index(keys, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


class _RacingDb:
    def __init__(self, real, **race) -> None:
        self.real, self.messages = real, _RacingMessages(real["messages"], **race)

    def __getitem__(self, name):
        return self.messages if name == "messages" else self.real[name]


def test_ttl_change_survives_another_worker_dropping_the_index_first():
    db = _db()
    MongoStore(db, audit_ttl_s=3600)
    MongoStore(_RacingDb(db, drop_first=True), audit_ttl_s=60)
    assert db["messages"].index_information()["at_ttl"]["expireAfterSeconds"] == 60


def test_ttl_change_replaces_an_old_setting_index_recreated_during_start_up():
    db = _db()
    MongoStore(db, audit_ttl_s=3600)
    MongoStore(_RacingDb(db, drop_first=True, old_ttl_creates=1), audit_ttl_s=60)
    assert db["messages"].index_information()["at_ttl"]["expireAfterSeconds"] == 60


def test_ttl_index_conflict_that_never_settles_fails_start_up():
    db = _db()
    MongoStore(db, audit_ttl_s=3600)
    with pytest.raises(OperationFailure) as raised:
        MongoStore(_RacingDb(db, old_ttl_creates=mongo.TTL_INDEX_ATTEMPTS), audit_ttl_s=60)
    assert raised.value.code == 85


def test_open_store_takes_the_database_from_the_url(monkeypatch):
    monkeypatch.setattr(mongo, "MongoClient", mongomock.MongoClient)
    named = open_store("mongodb://db.example:27017/fleet?retryWrites=false")
    default = open_store("mongodb://db.example:27017/")
    assert isinstance(named, MongoStore) and named._db.name == "fleet"
    assert isinstance(default, MongoStore) and default._db.name == "ocpp"


def test_open_store_accepts_srv_urls(monkeypatch):
    seen: list[str] = []

    def client(url: str, **kwargs):
        seen.append(url)  # mongomock would resolve the SRV record; only the routing matters here
        return mongomock.MongoClient("mongodb://db.example/fleet", **kwargs)

    monkeypatch.setattr(mongo, "MongoClient", client)
    assert isinstance(open_store("mongodb+srv://cluster.example/fleet"), MongoStore)
    assert seen == ["mongodb+srv://cluster.example/fleet"]


class _RacingCounters:
    """The first upsert loses the race against another instance creating the counter document."""

    def __init__(self, real) -> None:
        self.real, self.raced = real, False

    def find_one_and_update(self, *args, **kwargs):
        if not self.raced:
            self.raced = True
            self.real.insert_one({"_id": args[0]["_id"], "value": 41})  # the other instance's upsert
            raise DuplicateKeyError("E11000 duplicate key")
        return self.real.find_one_and_update(*args, **kwargs)


class _Db:
    def __init__(self, real) -> None:
        self.real, self.counters = real, _RacingCounters(real["counters"])

    def __getitem__(self, name):
        return self.counters if name == "counters" else self.real[name]


def test_first_counter_upsert_race_still_yields_a_fresh_id():
    store = MongoStore(_db())
    store._db = _Db(store._db)
    assert store.next_transaction_id() == 42
