"""A rotated MongoDB password: the store re-reads the secret and reconnects instead of failing until restart."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import mongomock
import pytest
from moto import mock_aws
from pymongo.errors import OperationFailure

from adapter.store.base import ChargerRecord
from adapter.store.credentials import CredentialRenewal, SecretUrl
from adapter.store.mongo import AUTHENTICATION_FAILED, MongoStore

BASE_URL = "mongodb://docdb.internal:27117/?tls=true&replicaSet=rs0"
SECRET = "docdb-master"


class Refusing:
    """A collection on a connection the server did not authenticate: every operation is refused."""

    def __init__(self, server: Server) -> None:
        self._server = server

    def __getattr__(self, name: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            self._server.refusals += 1
            if self._server.on_refusal is not None:
                hook, self._server.on_refusal = self._server.on_refusal, None
                hook()
            raise OperationFailure("refused", code=self._server.refusal_code)
        return refused


class Database:
    """What ``connect`` returns: the server's data, as long as the server accepts this URL's password."""

    def __init__(self, server: Server, password: str) -> None:
        self._server = server
        self.password = password
        self.client = self  # MongoStore closes a replaced database's client
        self.closed = False

    def __getitem__(self, name: str) -> Any:
        if self.password != self._server.password:
            return Refusing(self._server)
        return self._server.data[name]

    def close(self) -> None:
        self.closed = True


class Server:
    """A MongoDB whose password the rotation changes (mongomock holds the data)."""

    def __init__(self) -> None:
        self.password = "old"
        self.data = mongomock.MongoClient(tz_aware=True)["ocpp"]
        self.refusals = 0
        self.refusal_code = AUTHENTICATION_FAILED
        self.on_refusal: Any = None
        self.opened: list[Database] = []

    def connect(self, url: str) -> Database:
        database = Database(self, unquote(urlsplit(url).password or ""))
        self.opened.append(database)
        return database


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def secrets() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="eu-west-1")
        client.create_secret(Name=SECRET, SecretString=json.dumps({"username": "ocpp", "password": "old",
                                                                   "engine": "mongo"}))
        yield client


def rotate_secret(client: Any, password: str) -> None:
    client.put_secret_value(SecretId=SECRET, SecretString=json.dumps({"username": "ocpp", "password": password}))


class CountingSecretUrl(SecretUrl):
    reads = 0

    def __call__(self) -> str:
        self.reads += 1
        return super().__call__()


def open_store(server: Server, secrets: Any, clock: Clock) -> tuple[MongoStore, CountingSecretUrl]:
    fresh = CountingSecretUrl(SECRET, BASE_URL, client=secrets)
    url = fresh()
    fresh.reads = 0
    renewal = CredentialRenewal(url, fresh, server.connect, clock=clock)
    return MongoStore(server.connect(url), renewal=renewal), fresh  # type: ignore[arg-type]


def charger(charger_id: str) -> ChargerRecord:
    return ChargerRecord(charger_id=charger_id, first_seen=datetime.now(UTC))


def test_secret_url_takes_documentdb_json_or_a_whole_uri(secrets: Any) -> None:
    rotate_secret(secrets, "p@ss/w:rd")
    url = SecretUrl(SECRET, "mongodb://stale:creds@docdb.internal:27117/?tls=true", client=secrets)()
    assert url == "mongodb://ocpp:p%40ss%2Fw%3Ard@docdb.internal:27117/?tls=true"
    secrets.put_secret_value(SecretId=SECRET, SecretString="mongodb+srv://u:p@cluster.example.net/ocpp")
    assert SecretUrl(SECRET, BASE_URL, client=secrets)() == "mongodb+srv://u:p@cluster.example.net/ocpp"


def test_a_malformed_secret_is_refused_without_quoting_it(secrets: Any) -> None:
    secrets.put_secret_value(SecretId=SECRET, SecretString='{"user": "ocpp", "pass": "hunter2"}')
    with pytest.raises(ValueError, match="neither a mongodb URI nor username and password") as raised:
        SecretUrl(SECRET, BASE_URL, client=secrets)()
    assert "hunter2" not in str(raised.value)


def test_after_a_rotation_the_store_reconnects_with_the_secrets_new_password(
        secrets: Any, caplog: pytest.LogCaptureFixture) -> None:
    server = Server()
    store, fresh = open_store(server, secrets, Clock())
    store.upsert_charger(charger("CP-1"))
    first = server.opened[-1]

    server.password = "n3w-s3cret"
    rotate_secret(secrets, "n3w-s3cret")
    with caplog.at_level(logging.WARNING):
        assert store.get_charger("CP-1") is not None  # refused, renewed, retried
        store.upsert_charger(charger("CP-2"))
    assert (server.refusals, fresh.reads, len(server.opened)) == (1, 1, 2)
    assert server.opened[-1].password == "n3w-s3cret"
    assert [r.message for r in caplog.records] == [
        "store refused the credentials in use; reconnected with the secret's current ones"]
    assert "n3w-s3cret" not in caplog.text
    assert not first.closed  # operations still running on it get a grace period


def test_a_secret_not_yet_rotated_is_read_again_only_after_the_interval(secrets: Any) -> None:
    server, clock = Server(), Clock()
    store, fresh = open_store(server, secrets, clock)
    server.password = "new"  # the rotation changed the server; the secret's current version is still old

    for _ in range(3):
        with pytest.raises(OperationFailure) as refused:
            store.get_charger("CP-1")
        assert refused.value.code == AUTHENTICATION_FAILED
    assert fresh.reads == 1  # the refusals within the interval did not read the secret again

    rotate_secret(secrets, "new")
    clock.now += 10.0
    assert store.get_charger("CP-1") is None
    assert fresh.reads == 2


def test_a_thread_refused_while_another_renewed_retries_on_the_new_connection(secrets: Any) -> None:
    server = Server()
    store, fresh = open_store(server, secrets, Clock())
    server.password = "new"
    rotate_secret(secrets, "new")
    outcome: list[object] = []
    # The first refusal lets another caller run to completion (it renews) before its own error returns.
    server.on_refusal = lambda: outcome.append(store.get_charger("CP-1"))

    store.upsert_charger(charger("CP-1"))
    assert outcome == [None]
    assert fresh.reads == 1 and store.get_charger("CP-1") is not None


def test_other_failures_and_stores_without_a_secret_are_not_retried(secrets: Any) -> None:
    server = Server()
    store, fresh = open_store(server, secrets, Clock())
    plain = MongoStore(server.connect(BASE_URL.replace("//", "//ocpp:old@")))  # type: ignore[arg-type]
    server.password = "new"
    rotate_secret(secrets, "new")

    with pytest.raises(OperationFailure) as refused:
        plain.get_charger("CP-1")
    assert refused.value.code == AUTHENTICATION_FAILED

    server.refusal_code = 13  # Unauthorized: the user lacks a role, which new credentials do not change
    with pytest.raises(OperationFailure) as refused:
        store.get_charger("CP-1")
    assert refused.value.code == 13 and fresh.reads == 0
