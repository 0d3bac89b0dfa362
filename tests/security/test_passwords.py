import base64

import pytest

from adapter.security.passwords import (
    AuthOutcome,
    VerifiedCache,
    check_basic_auth,
    hash_password,
    validate_password,
    verify_password,
)
from adapter.store.base import ChargerRecord

PASSWORD = "correct-horse-battery"
HASH = hash_password(PASSWORD)


def basic(user_password: str) -> str:
    return "Basic " + base64.b64encode(user_password.encode()).decode()


def test_hash_is_salted_argon2id_and_verifies():
    assert HASH.startswith("$argon2id$")
    assert hash_password(PASSWORD) != HASH
    assert verify_password(HASH, PASSWORD)
    assert not verify_password(HASH, PASSWORD + "x")


@pytest.mark.parametrize("bad_hash", ["", "plain", "$argon2id$garbage"])
def test_unusable_hash_never_verifies(bad_hash):
    assert not verify_password(bad_hash, PASSWORD)


@pytest.mark.parametrize("length", [16, 40])
def test_password_lengths_at_the_bounds_are_accepted(length):
    assert validate_password("p" * length)


@pytest.mark.parametrize("password", ["short-secret-15", "x" * 41])
def test_password_length_error_is_clear_and_keeps_the_secret(password):
    with pytest.raises(ValueError, match=f"16-40 characters \\(OCPP\\), got {len(password)}") as err:
        hash_password(password)
    assert password not in str(err.value)


def test_password_must_be_printable_ascii():
    with pytest.raises(ValueError, match="printable ASCII"):
        validate_password("sixteen-chars\tabc")


RECORD = ChargerRecord("CP-1", password_hash=HASH, security_profile=1)


@pytest.mark.parametrize(("header", "outcome"), [
    (None, AuthOutcome.MISSING),
    ("", AuthOutcome.MISSING),
    ("Bearer abc", AuthOutcome.MALFORMED),
    ("Basic !!!not-base64", AuthOutcome.MALFORMED),
    ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), AuthOutcome.MALFORMED),
    (basic("CP-1"), AuthOutcome.MALFORMED),
    (basic("CP-2:" + PASSWORD), AuthOutcome.WRONG_USER),
    (basic("CP-1:" + PASSWORD + "x"), AuthOutcome.WRONG_PASSWORD),
    (basic("CP-1:" + PASSWORD), AuthOutcome.OK),
    ("basic  " + basic("CP-1:" + PASSWORD)[6:], AuthOutcome.OK),
    ("Basic " + "A" * 600, AuthOutcome.MALFORMED),
])
def test_check_basic_auth(header, outcome):
    assert check_basic_auth(header, "CP-1", RECORD) is outcome


def test_ids_with_colons_and_passwords_with_colons_are_unambiguous():
    password = "pass:word:with:colons"
    record = ChargerRecord("AA:BB:CC", password_hash=hash_password(password))
    assert check_basic_auth(basic(f"AA:BB:CC:{password}"), "AA:BB:CC", record).ok
    assert check_basic_auth(basic(f"AA:BB:{password}"), "AA:BB:CC", record) is AuthOutcome.WRONG_USER
    assert check_basic_auth(basic(f"AA:BB:CC:{password}x"), "AA:BB:CC", record) is AuthOutcome.WRONG_PASSWORD


def test_charger_without_password_never_passes():
    assert check_basic_auth(basic("CP-1:" + PASSWORD), "CP-1", ChargerRecord("CP-1")) is AuthOutcome.NO_PASSWORD


def test_verified_cache_matches_only_the_same_header_and_hash():
    cache = VerifiedCache(max_entries=2)
    header = basic("CP-1:" + PASSWORD)
    assert not cache.hit("CP-1", HASH, header)
    cache.remember("CP-1", HASH, header)
    assert cache.hit("CP-1", HASH, header)
    assert not cache.hit("CP-1", HASH, header + "x")
    assert not cache.hit("CP-1", "rotated-hash", header)
    assert not cache.hit("CP-2", HASH, header)


def test_verified_cache_is_bounded_least_recently_used_first():
    cache = VerifiedCache(max_entries=2)
    for cid in ("a", "b"):
        cache.remember(cid, HASH, "h")
    assert cache.hit("a", HASH, "h")  # "b" is now the least recently used
    cache.remember("c", HASH, "h")
    assert [cache.hit(cid, HASH, "h") for cid in ("a", "b", "c")] == [True, False, True]
