"""Which charger ids may connect at all: the registration policy.

``open``: an unknown id is registered on its first connection (security profile 0, no credentials) --
trust on first use, for local runs and pilots. ``known``: only ids an operator registered
(``python -m adapter chargers add``) may connect; others are refused (HTTP 404).
"""

from __future__ import annotations

from adapter.store.async_store import AsyncStore
from adapter.store.base import ChargerRecord, Store

POLICIES = ("open", "known")


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ValueError(f"registration policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    return policy


async def admit(store: AsyncStore, charger_id: str, policy: str) -> ChargerRecord | None:
    """The charger's record, registering it first under ``open``; None if it may not connect.

    Registration inserts only if absent, so it can never overwrite a record (and its credentials) that
    an operator or another adapter instance created at the same moment. One trip to the store thread:
    in a connect storm each handshake queues there once, not up to three times.
    """
    check_policy(policy)
    return await store.call(_admit, store.store, charger_id, policy)


def _admit(store: Store, charger_id: str, policy: str) -> ChargerRecord | None:
    record = store.get_charger(charger_id)
    if record is not None or policy == "known":
        return record
    if store.create_charger(ChargerRecord(charger_id)):
        return ChargerRecord(charger_id)
    return store.get_charger(charger_id)
