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
    real_get = astore.get_charger
    lookups = []

    async def get_missing_once(charger_id):
        lookups.append(charger_id)
        return None if len(lookups) == 1 else await real_get(charger_id)  # created right after our lookup

    monkeypatch.setattr(astore, "get_charger", get_missing_once)
    admitted = await admit(astore, "CP-1", "open")
    assert (admitted.password_hash, admitted.security_profile) == ("h", 2)
    assert (await real_get("CP-1")).security_profile == 2


async def test_unknown_policy_is_refused(astore):
    with pytest.raises(ValueError, match="open, known"):
        await admit(astore, "CP-1", "anyone")
