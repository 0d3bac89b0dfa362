"""The handshake decision matrix at the Authenticator level."""

from __future__ import annotations

import asyncio
import base64
import threading

import boto3
import pytest
from moto import mock_aws

from adapter.security import auth
from adapter.security.auth import Authenticator, HandshakeContext
from adapter.security.passwords import check_basic_auth, hash_password
from adapter.security.provisioning import ThingProvisioner
from adapter.security.throttle import Throttle
from adapter.store.base import ChargerRecord

PASSWORD = "sixteen-chars-ok!"
HASH = hash_password(PASSWORD)
CERT_CP3 = {"subject": ((("commonName", "CP-3"),),), "serialNumber": "01"}
CERT_SERIAL = {"subject": ((("commonName", "SN-3"),),), "serialNumber": "02"}
CERT_OTHER = {"subject": ((("commonName", "CP-2"),),), "serialNumber": "03"}


def basic(charger_id: str, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{charger_id}:{password}".encode()).decode()


@pytest.fixture
async def chargers(astore):
    for record in [
        ChargerRecord("CP-0"),
        ChargerRecord("CP-1", password_hash=HASH, security_profile=1),
        ChargerRecord("CP-2", password_hash=HASH, security_profile=2),
        ChargerRecord("CP-3", security_profile=3, serial="SN-3", password_hash=HASH),
        ChargerRecord("CP-NOPW", security_profile=1),
        ChargerRecord("CP-9", security_profile=9),
    ]:
        await astore.upsert_charger(record)
    return astore


MATRIX = [
    # charger, authorization, tls, peer_cert, front profile -> status, reason
    ("CP-0", None, False, None, None, 200, "ok"),
    ("CP-1", None, False, None, None, 401, "no credentials"),
    ("CP-1", basic("CP-1", "wrong-password-123"), False, None, None, 401, "wrong password"),
    ("CP-1", basic("CP-2"), False, None, None, 401, "user name is not the charger id"),
    ("CP-1", basic("CP-1"), False, None, None, 200, "ok"),
    ("CP-1", basic("CP-1"), True, None, None, 200, "ok"),
    ("CP-2", basic("CP-2"), False, None, None, 403, "security profile 2 requires TLS"),
    ("CP-2", None, True, None, None, 401, "no credentials"),
    ("CP-2", basic("CP-2", "wrong-password-123"), True, None, None, 401, "wrong password"),
    ("CP-2", basic("CP-2"), True, None, None, 200, "ok"),
    ("CP-2", basic("CP-2"), False, None, 2, 200, "ok"),
    ("CP-3", basic("CP-3"), True, None, None, 403, "requires a verified client certificate"),
    ("CP-3", None, False, CERT_CP3, None, 403, "security profile 3 requires TLS"),
    ("CP-3", None, True, CERT_OTHER, None, 403, "CN matches neither"),
    ("CP-3", None, True, CERT_CP3, None, 200, "ok"),
    ("CP-3", None, True, CERT_SERIAL, None, 200, "ok"),
    ("CP-3", None, False, CERT_CP3, 2, 403, "requires a verified client certificate"),
    ("CP-NOPW", basic("CP-NOPW"), False, None, None, 403, "no password configured"),
    ("CP-9", None, True, None, None, 403, "unsupported security profile 9"),
    ("CP-404", None, False, None, None, 404, "unknown charger"),
    ("bad/id", None, False, None, None, 400, "contains '/'"),
]


@pytest.mark.parametrize(("cid", "authorization", "tls", "cert", "front", "status", "reason"), MATRIX)
async def test_decision_matrix(chargers, cid, authorization, tls, cert, front, status, reason):
    authenticator = Authenticator(chargers, registration="known", front_tls_profile=front)
    decision = await authenticator.authenticate(HandshakeContext(cid, authorization, tls, cert))
    assert (decision.status, decision.ok) == (status, status == 200)
    assert reason in decision.reason
    assert PASSWORD not in decision.reason
    if status == 200:
        assert decision.record.charger_id == cid
    if status == 401:
        assert decision.headers[0][0] == "WWW-Authenticate"


async def test_open_registration_admits_and_records_unknown_chargers(astore):
    decision = await Authenticator(astore).authenticate(HandshakeContext("CP-NEW"))
    assert (decision.status, decision.record.security_profile) == (200, 0)
    stored = await astore.get_charger("CP-NEW")
    assert stored.first_seen is not None and stored.first_seen == decision.record.first_seen


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_repeated_failures_are_throttled_to_429(chargers):
    clock = Clock()
    authenticator = Authenticator(chargers, throttle=Throttle(max_failures=5, backoff_s=60, clock=clock))
    wrong = HandshakeContext("CP-1", basic("CP-1", "wrong-password-123"))
    statuses = [(await authenticator.authenticate(wrong)).status for _ in range(5)]
    assert statuses == [401] * 5
    throttled = await authenticator.authenticate(HandshakeContext("CP-1", basic("CP-1")))
    assert (throttled.status, throttled.headers) == (429, (("Retry-After", "60"),))
    assert (await authenticator.authenticate(HandshakeContext("CP-0"))).status == 200  # other ids unaffected
    clock.now += 60
    assert (await authenticator.authenticate(HandshakeContext("CP-1", basic("CP-1")))).status == 200


async def test_a_guesser_locks_out_its_own_address_and_spread_guessing_the_id(chargers):
    """A guesser who knows a charger's id must not keep the charger itself out (it may not have connected to
    this process yet, so the verified-credentials cache cannot vouch for it)."""
    clock = Clock()
    authenticator = Authenticator(chargers, throttle=Throttle(max_failures=5, backoff_s=60, clock=clock),
                                  id_throttle=Throttle(max_failures=12, backoff_s=60, clock=clock))

    async def guess(source: str) -> int:
        return (await authenticator.authenticate(HandshakeContext("CP-1", basic("CP-1", "x" * 16),
                                                                  source=source))).status
    assert [await guess("10.0.0.66") for _ in range(6)] == [401] * 5 + [429]
    charger = HandshakeContext("CP-1", basic("CP-1"), source="10.0.0.7")
    assert (await authenticator.authenticate(charger)).status == 200
    assert [await guess(f"10.0.1.{n}") for n in range(8)] == [401] * 7 + [429]  # 12 failures for the id
    assert await guess("10.0.2.1") == 429
    clock.now += 60
    assert await guess("10.0.2.1") == 401


async def test_refusals_that_check_no_password_never_lock_a_charger_out(chargers):
    clock = Clock()
    authenticator = Authenticator(chargers, throttle=Throttle(max_failures=2, backoff_s=60, clock=clock))
    no_password_checked = [
        (HandshakeContext("CP-2", basic("CP-2")), 403),  # plain ws:// to profile 2
        (HandshakeContext("CP-2", tls=True), 401),  # no credentials
        (HandshakeContext("CP-2", "Bearer x", tls=True), 401),  # malformed
        (HandshakeContext("CP-2", basic("CP-1"), tls=True), 401),  # another id's user name
    ]
    for _ in range(3):  # an anonymous peer, minute after minute
        for ctx, status in no_password_checked:
            assert (await authenticator.authenticate(ctx)).status == status
        clock.now += 59
    assert (await authenticator.authenticate(HandshakeContext("CP-2", basic("CP-2"), tls=True))).status == 200


async def test_verified_credentials_are_admitted_while_guessers_are_throttled(chargers):
    authenticator = Authenticator(chargers, throttle=Throttle(max_failures=5, backoff_s=60, clock=Clock()))
    legitimate, wrong = HandshakeContext("CP-1", basic("CP-1")), HandshakeContext("CP-1", basic("CP-1", "x" * 16))
    assert (await authenticator.authenticate(legitimate)).status == 200
    assert [(await authenticator.authenticate(wrong)).status for _ in range(6)] == [401] * 5 + [429]
    assert (await authenticator.authenticate(legitimate)).status == 200
    throttled = await authenticator.authenticate(wrong)  # the verified charger's success clears no guesses
    assert (throttled.status, throttled.headers) == (429, (("Retry-After", "60"),))


async def test_verified_credentials_skip_argon2_until_the_password_changes(chargers, monkeypatch):
    calls = []

    def counting(*args):
        calls.append(args[1])
        return check_basic_auth(*args)

    monkeypatch.setattr(auth, "check_basic_auth", counting)
    authenticator = Authenticator(chargers)
    ctx = HandshakeContext("CP-1", basic("CP-1"))
    assert [(await authenticator.authenticate(ctx)).status for _ in range(3)] == [200, 200, 200]
    assert calls == ["CP-1"]
    await chargers.update_charger("CP-1", password_hash=hash_password("a-brand-new-password"))
    assert (await authenticator.authenticate(ctx)).status == 401
    assert calls == ["CP-1", "CP-1"]


async def test_password_checks_run_off_loop_and_concurrency_is_capped(chargers, monkeypatch):
    loop = asyncio.get_running_loop()
    entered: asyncio.Queue[str] = asyncio.Queue()
    release = threading.Event()
    running, peak = [0], [0]
    loop_thread = threading.get_ident()

    def blocking(*args):
        assert threading.get_ident() != loop_thread
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        loop.call_soon_threadsafe(entered.put_nowait, args[1])
        release.wait(timeout=30)
        running[0] -= 1
        return check_basic_auth(*args)

    monkeypatch.setattr(auth, "check_basic_auth", blocking)
    authenticator = Authenticator(chargers, hash_concurrency=2, throttle=Throttle(max_failures=100))
    tasks = [asyncio.create_task(authenticator.authenticate(HandshakeContext("CP-1", basic("CP-1", f"pw-{i:014d}"))))
             for i in range(5)]
    await entered.get()
    await entered.get()
    for _ in range(20):  # let every other task run as far as it can
        await asyncio.sleep(0)
    assert entered.empty() and running[0] == 2
    release.set()
    assert [d.status for d in await asyncio.gather(*tasks)] == [401] * 5
    assert peak[0] == 2


async def test_first_connection_provisions_the_thing_once(chargers):
    with mock_aws():
        iot = boto3.client("iot", region_name="eu-west-1")
        authenticator = Authenticator(chargers, provisioner=ThingProvisioner(iot))
        await chargers.update_charger("CP-0", vendor="ACME", model="Fast50")
        first = await authenticator.authenticate(HandshakeContext("CP-0"))
        assert first.record.first_seen is not None
        assert iot.describe_thing(thingName="CP-0")["thingTypeName"] == "ACME-Fast50"
        iot.delete_thing(thingName="CP-0")
        assert (await authenticator.authenticate(HandshakeContext("CP-0"))).status == 200
        assert iot.list_things()["things"] == []  # not a first connection any more: no provisioning


def test_bad_settings_are_refused(astore):
    with pytest.raises(ValueError, match="front_tls_profile"):
        Authenticator(astore, front_tls_profile=1)
    with pytest.raises(ValueError, match="profile 3 needs TLS in the adapter"):
        Authenticator(astore, front_tls_profile=3)
    with pytest.raises(ValueError, match="registration policy"):
        Authenticator(astore, registration="closed")
