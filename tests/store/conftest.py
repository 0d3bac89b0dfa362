"""One ``store`` fixture over every back end, so the contract suite holds them all to one behaviour.

Set MONGODB_URI to add a real MongoDB/DocumentDB server to the matrix (each test gets its own database).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import mongomock
import pymongo
import pytest

from adapter.store.factory import open_store
from adapter.store.mongo import MongoStore
from adapter.store.tabular import TabularStore

MONGODB_URI = os.environ.get("MONGODB_URI")
BACKENDS = ["sqlite-file", "memory", "mongomock", *(["mongodb"] if MONGODB_URI else [])]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(backend: str, tmp_path) -> Iterator:
    """Factory: ``make_store(**kwargs)`` opens a store of the parametrized back end."""
    opened: list[TabularStore] = []
    clients: list[pymongo.MongoClient] = []
    db_name = f"ocpp_test_{uuid.uuid4().hex[:12]}"

    def make(**kwargs) -> TabularStore:
        if backend == "sqlite-file":
            store = open_store(f"sqlite:///{tmp_path}/store.db", **kwargs)
        elif backend == "memory":
            store = open_store("memory://", **kwargs)
        elif backend == "mongomock":
            store = MongoStore(mongomock.MongoClient(tz_aware=True)[db_name], **kwargs)
        else:
            client: pymongo.MongoClient = pymongo.MongoClient(MONGODB_URI, tz_aware=True)
            clients.append(client)
            store = MongoStore(client[db_name], **kwargs)
        assert isinstance(store, TabularStore)
        opened.append(store)
        return store

    yield make
    if clients:
        with pymongo.MongoClient(MONGODB_URI) as admin:
            admin.drop_database(db_name)
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store) -> TabularStore:
    return make_store()
