"""One URL picks the store, so the server and the admin CLI always open the same one.

``mongodb://`` / ``mongodb+srv://``: MongoDB or DocumentDB, database from the URL path (default ``ocpp``).
``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``: the embedded store (directories are
created). ``memory://``: sqlite in memory, gone on close (unit tests).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from adapter.store.base import Store
from adapter.store.records import DEFAULT_AUDIT_TTL_S

STORE_URL_ENV = "STORE_URL"
DEFAULT_STORE_URL = "sqlite:///var/ocpp-gateway.db"
_SQLITE_PREFIX = "sqlite:///"


def store_url_from_env(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(STORE_URL_ENV) or DEFAULT_STORE_URL


def open_store(url: str, *, audit_ttl_s: int = DEFAULT_AUDIT_TTL_S,
               fresh_url: Callable[[], str] | None = None) -> Store:
    """``fresh_url`` (MongoDB only) re-reads the URL when the server refuses its credentials."""
    # Back ends are imported on demand: the embedded store must not need pymongo's import cost.
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from adapter.store.mongo import MongoStore

        return MongoStore.from_url(url, audit_ttl_s=audit_ttl_s, fresh_url=fresh_url)

    from adapter.store.sqlite import MEMORY, SqliteStore

    if url == "memory://":
        return SqliteStore(MEMORY, audit_ttl_s=audit_ttl_s)
    if url.startswith(_SQLITE_PREFIX) and len(url) > len(_SQLITE_PREFIX):
        path = Path(url.removeprefix(_SQLITE_PREFIX))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteStore(path, audit_ttl_s=audit_ttl_s)
    scheme = url.partition(":")[0]  # never echo the rest: URLs can carry credentials
    raise ValueError(
        f"unsupported store URL (scheme {scheme!r}): use mongodb://..., mongodb+srv://..., "
        "sqlite:///path.db or memory://"
    )
