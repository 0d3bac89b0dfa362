import pytest

from adapter.security.registration import admit
from adapter.store.base import ChargerRecord


async def test_known_policy_admits_only_registered_chargers(astore):
    await astore.upsert_charger(ChargerRecord("CP-1", security_profile=1))
    assert (await admit(astore, "CP-1", "known")).security_profile == 1
    assert await admit(astore, "CP-2", "known") is None
    assert await astore.get_charger("CP-2") is None


async def test_open_policy_registers_unknown_chargers_without_credentials(astore):
    assert await admit(astore, "CP-2", "open") == ChargerRecord("CP-2")
    assert await astore.get_charger("CP-2") == ChargerRecord("CP-2")


async def test_open_registration_never_overwrites_a_concurrently_created_record(astore, monkeypatch):
    await astore.upsert_charger(ChargerRecord("CP-1", password_hash="h", security_profile=2))
    real_get = astore.store.get_charger
    lookups = []

    def get_missing_once(charger_id):
        lookups.append(charger_id)
        return None if len(lookups) == 1 else real_get(charger_id)  # created right after our lookup

    monkeypatch.setattr(astore.store, "get_charger", get_missing_once)
    admitted = await admit(astore, "CP-1", "open")
    assert (admitted.password_hash, admitted.security_profile) == ("h", 2)
    assert real_get("CP-1").security_profile == 2
    assert lookups == ["CP-1", "CP-1"]


async def test_unknown_policy_is_refused(astore):
    with pytest.raises(ValueError, match="open, known"):
        await admit(astore, "CP-1", "anyone")


async def test_registering_a_new_charger_is_one_trip_to_the_store_thread(astore, monkeypatch):
    """A connect storm queues each handshake on the store thread once, not once per lookup and insert."""
    trips = []
    real_call = astore.call

    async def counted(fn, *args, **kwargs):
        trips.append(fn.__name__)
        return await real_call(fn, *args, **kwargs)

    monkeypatch.setattr(astore, "call", counted)
    assert await admit(astore, "CP-new", "open") == ChargerRecord("CP-new")
    assert trips == ["_admit"]
