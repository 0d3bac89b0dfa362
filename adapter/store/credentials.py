"""MongoDB credentials: joined into the store URL, and re-read from Secrets Manager after a rotation.

ECS injects the secret's values once, when a task starts. A rotation changes the password on the server;
pooled connections stay authenticated, but every new one is refused. The store then asks
``CredentialRenewal`` for a database opened with what the secret holds now, instead of failing until the
task is replaced.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

log = logging.getLogger(__name__)

D = TypeVar("D")

# A rotation sets the new password on the server before it marks the secret's new version current, so a
# read in between still gets the old one: the next refusal after this interval reads again.
RENEW_INTERVAL_S = 10.0


def with_credentials(url: str, username: str | None, password: str | None, *, replace: bool = False) -> str:
    """Credentials given separately (as ECS injects secrets) go into a mongodb URL; one that already has
    some keeps them unless ``replace``."""
    parts = urlsplit(url)
    if not username or not parts.scheme.startswith("mongodb"):
        return url
    host = parts.netloc.rpartition("@")[2]
    if host != parts.netloc and not replace:
        return url
    auth = quote(username, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{auth}@{host}"))


class SecretUrl:
    """The store URL as the secret makes it now. The secret holds either a whole MongoDB URI (an external
    database) or DocumentDB's JSON with ``username`` and ``password``, which go into ``base_url``."""

    def __init__(self, secret_id: str, base_url: str, *, client: Any = None) -> None:
        self.secret_id = secret_id
        self._base_url = base_url
        self._client = client

    def __call__(self) -> str:
        if self._client is None:
            import boto3  # only a deployment that names a secret needs it loaded

            self._client = boto3.client("secretsmanager")
        value: str = self._client.get_secret_value(SecretId=self.secret_id)["SecretString"]
        if value.startswith(("mongodb://", "mongodb+srv://")):
            return value
        try:
            fields = json.loads(value)
            username, password = str(fields["username"]), str(fields["password"])
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"secret {self.secret_id} holds neither a mongodb URI nor username and "
                             "password") from None
        return with_credentials(self._base_url, username, password, replace=True)


class CredentialRenewal(Generic[D]):
    """Opens the database again when the secret's credentials differ from those in use; reads the secret at
    most once per ``interval_s``, so a password that is simply wrong does not flood Secrets Manager."""

    def __init__(self, url: str, read_url: Callable[[], str], connect: Callable[[str], D], *,
                 interval_s: float = RENEW_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._url = url
        self._read_url = read_url
        self._connect = connect
        self._interval_s = interval_s
        self._clock = clock
        self._last_read = float("-inf")
        self._lock = threading.Lock()

    def renew(self) -> D | None:
        """A database on fresh credentials, or None when there are none to try yet."""
        with self._lock:
            now = self._clock()
            if now - self._last_read < self._interval_s:
                return None
            self._last_read = now
            try:
                url = self._read_url()
            except Exception:
                log.exception("could not re-read the store credentials")
                return None
            if url == self._url:
                log.warning("the store refuses the credentials the secret holds; will read it again")
                return None
            try:
                database = self._connect(url)
            except Exception as exc:  # only its type: a message about the URL could quote the password
                log.error("could not connect with the re-read store credentials", extra={"error": type(exc).__name__})
                return None
            self._url = url
            return database
