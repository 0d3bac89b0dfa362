"""MongoDB store in plain pymongo, limited to what Amazon DocumentDB also supports.

Each record's key is the document ``_id``. Counters are ``find_one_and_update`` + ``$inc`` on a
``counters`` document, atomic across every adapter instance. The audit log expires through a TTL index.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

from adapter.store.credentials import CredentialRenewal
from adapter.store.records import DEFAULT_AUDIT_TTL_S, TABLES, Row, Table
from adapter.store.tabular import TabularStore

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "ocpp"
AUTHENTICATION_FAILED = 18  # the server's error code when it refuses a new connection's credentials
INDEX_NOT_FOUND = 27
# IndexOptionsConflict, IndexKeySpecsConflict: an index of that name but other options or keys exists.
INDEX_CONFLICTS = (85, 86)
TTL_INDEX_ATTEMPTS = 3  # a conflict that outlasts this is a fight between settings, not a start-up race
# Operations still running on the client that credentials replaced finish before it is closed.
RETIRED_CLIENT_GRACE_S = 60.0
Document = dict[str, Any]
P = ParamSpec("P")
T = TypeVar("T")


def _field(table: Table[Any], name: str) -> str:
    return "_id" if name == table.key else name


def _doc(table: Table[Any], row: Row) -> Document:
    return {_field(table, k): v for k, v in row.items()}


def _row(table: Table[Any], doc: Document) -> Row:
    doc = dict(doc)
    key = doc.pop("_id")
    if table.key:
        doc[table.key] = key
    return doc


def connect(url: str) -> Database[Document]:
    """The URL's database, ``ocpp`` when the URL names none."""
    client: MongoClient[Document] = MongoClient(url, tz_aware=True, appname="ocpp-gateway")
    return client.get_default_database(DEFAULT_DATABASE)


def _renewing(method: Callable[Concatenate[MongoStore, P], T]) -> Callable[Concatenate[MongoStore, P], T]:
    """Retry once on fresh credentials when the server refused the ones in use. The refusal comes while a
    new connection authenticates, before its command is sent, so a one-command write is not applied twice."""
    @functools.wraps(method)
    def wrapper(self: MongoStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        generation = self._generation
        try:
            return method(self, *args, **kwargs)
        except OperationFailure as exc:
            if exc.code != AUTHENTICATION_FAILED or not self._renew(generation):
                raise
        return method(self, *args, **kwargs)
    return wrapper


class MongoStore(TabularStore):
    """``Store`` on a pymongo ``Database`` (or anything with its API, such as mongomock's)."""

    max_workers = 8  # pymongo is thread-safe and pools connections

    def __init__(self, database: Database[Document], *, audit_ttl_s: int = DEFAULT_AUDIT_TTL_S,
                 renewal: CredentialRenewal[Database[Document]] | None = None) -> None:
        super().__init__(audit_ttl_s=audit_ttl_s)
        self._db = database
        self._renewal = renewal
        self._generation = 0  # databases swapped in so far; tells a thread whether another renewed meanwhile
        self._swap_lock = threading.Lock()
        self._prepare()

    @classmethod
    def from_url(cls, url: str, *, audit_ttl_s: int = DEFAULT_AUDIT_TTL_S,
                 fresh_url: Callable[[], str] | None = None) -> MongoStore:
        """``fresh_url`` re-reads the URL (with credentials) when the server refuses the ones in use."""
        renewal = CredentialRenewal(url, fresh_url, connect) if fresh_url is not None else None
        return cls(connect(url), audit_ttl_s=audit_ttl_s, renewal=renewal)

    def _renew(self, failed_generation: int) -> bool:
        """Whether to retry: another thread renewed since the operation started, or this one just did."""
        if self._renewal is None:
            return False
        with self._swap_lock:
            if self._generation != failed_generation:
                return True
            database = self._renewal.renew()
            if database is None:
                return False
            retired, self._db = self._db, database
            self._generation += 1
        log.warning("store refused the credentials in use; reconnected with the secret's current ones")
        timer = threading.Timer(RETIRED_CLIENT_GRACE_S, retired.client.close)
        timer.daemon = True
        timer.start()
        return True

    @_renewing
    def _prepare(self) -> None:
        for table in TABLES:
            coll = self._coll(table)
            for index in table.indexes:
                coll.create_index([(_field(table, f), ASCENDING) for f in index])
            if table.ttl_field:
                self._ensure_ttl(coll, table.ttl_field)

    def _ensure_ttl(self, coll: Collection[Document], field: str) -> None:
        """A changed TTL setting replaces the index (collMod is not available on every server/mock).

        Workers starting together race here: another may drop the old index before this one does, or an
        instance still on the previous setting (mid-deployment) may recreate it between the drop and the
        create. Each round re-reads the index, so it ends at this worker's TTL or fails loudly.
        """
        name = f"{field}_ttl"
        keys = [(field, ASCENDING)]
        for attempt in range(1, TTL_INDEX_ATTEMPTS + 1):
            existing = coll.index_information().get(name)
            if existing is not None and (existing["key"] != keys
                                         or existing.get("expireAfterSeconds") != self.audit_ttl_s):
                try:
                    coll.drop_index(name)
                except OperationFailure as exc:
                    if exc.code != INDEX_NOT_FOUND:  # not found: another worker dropped it first
                        raise
            try:
                coll.create_index(keys, name=name, expireAfterSeconds=self.audit_ttl_s)
                return
            except OperationFailure as exc:
                if exc.code not in INDEX_CONFLICTS or attempt == TTL_INDEX_ATTEMPTS:
                    raise

    def _coll(self, table: Table[Any]) -> Collection[Document]:
        return self._db[table.name]

    @_renewing
    def _get(self, table: Table[Any], key: str) -> Row | None:
        doc = self._coll(table).find_one({"_id": key})
        return None if doc is None else _row(table, doc)

    @_renewing
    def _put(self, table: Table[Any], row: Row) -> None:
        doc = _doc(table, row)
        self._coll(table).replace_one({"_id": doc["_id"]}, doc, upsert=True)

    @_renewing
    def _insert(self, table: Table[Any], row: Row) -> bool:
        try:
            self._coll(table).insert_one(_doc(table, row))
        except DuplicateKeyError:
            return False
        return True

    @_renewing
    def _insert_many(self, table: Table[Any], rows: list[Row]) -> None:
        self._coll(table).insert_many([_doc(table, r) for r in rows], ordered=False)

    @_renewing
    def _update(self, table: Table[Any], key: str, changes: Row) -> bool:
        return self._coll(table).update_one({"_id": key}, {"$set": changes}).matched_count == 1

    @_renewing
    def _delete(self, table: Table[Any], keys: list[str]) -> int:
        return self._coll(table).delete_many({"_id": {"$in": keys}}).deleted_count

    @_renewing
    def _find(self, table: Table[Any], where: Row, *, sort: list[str], descending: bool,
              since: datetime | None, limit: int | None) -> list[Row]:
        query = _doc(table, where)
        if since is not None and table.ttl_field:
            query[table.ttl_field] = {"$gte": since}
        direction = DESCENDING if descending else ASCENDING
        cursor = self._coll(table).find(query).sort([(_field(table, f), direction) for f in sort])
        if limit is not None:
            cursor = cursor.limit(limit)
        return [_row(table, doc) for doc in cursor]

    @_renewing
    def _next_counter(self, name: str) -> int:
        counters = self._db["counters"]
        try:
            doc = counters.find_one_and_update({"_id": name}, {"$inc": {"value": 1}}, upsert=True,
                                               return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:  # two first-ever upserts raced; the document exists now
            doc = counters.find_one_and_update({"_id": name}, {"$inc": {"value": 1}},
                                               return_document=ReturnDocument.AFTER)
        assert doc is not None
        return int(doc["value"])

    def close(self) -> None:
        self._db.client.close()
