"""Built-in answers: every charger action of every version has one, valid against its schema."""

from datetime import UTC, datetime, timedelta

import pytest

from adapter.csms.central_system import CentralSystem, SessionState
from adapter.csms.policy import AuthPolicy, BootPolicy, CsmsPolicy
from adapter.ocpp.validation import compiled, validate
from adapter.ocpp.versions import Version, charger_actions
from adapter.store.base import IdTokenRecord, TransactionRecord


class Tokens:
    def __init__(self, records: dict[str, IdTokenRecord]) -> None:
        self.records = records

    async def get_id_token(self, token: str) -> IdTokenRecord | None:
        return self.records.get(token)


class Counter:
    def __init__(self) -> None:
        self.value = 0

    async def next_transaction_id(self) -> int:
        self.value += 1
        return self.value

    async def active_transactions(self, charger_id: str) -> list[TransactionRecord]:
        return []


class Ledger(Counter):
    def __init__(self, records: list[TransactionRecord]) -> None:
        super().__init__()
        self.records = records

    async def active_transactions(self, charger_id: str) -> list[TransactionRecord]:
        return [r for r in self.records if r.charger_id == charger_id]


ACTIVE_7 = TransactionRecord("cp1/7", "cp1", "active", id_token="T1", evse_id=1, connector_id=1, meter_start_wh=0.0,
                             started_at=datetime(2024, 5, 1, 10, tzinfo=UTC))


@pytest.mark.parametrize(("timestamp", "expected"), [
    ("2024-05-01T10:00:00Z", 7), ("2024-05-01t10:00:00z", 7), ("2024-05-01T12:00:00+02:00", 7),
    ("2024-05-01T10:00:01Z", 1), ("2016-12-31T23:59:60Z", 1),  # another start; a leap second matches nothing
])
async def test_a_repeated_start_transaction_gets_the_id_it_was_given(timestamp: str, expected: int) -> None:
    csms = CentralSystem(CsmsPolicy(), Tokens({}), Ledger([ACTIVE_7]))
    state = SessionState("cp1", Version.V16, boot_status="Accepted")
    start = {"connectorId": 1, "idTag": "T1", "meterStart": 0, "timestamp": timestamp}
    assert (await csms.answer(state, "StartTransaction", start))["transactionId"] == expected


class Delegate:
    def __init__(self, reply: dict | None) -> None:
        self.reply = reply
        self.asked: list[tuple[str, str]] = []

    async def ask(self, charger_id: str, action: str, payload: dict, timeout: float) -> dict | None:
        self.asked.append((charger_id, action))
        return self.reply


def minimal_request(version: Version, action: str) -> dict:
    """Requests the answers depend on; others are answered whatever they carry."""
    v16 = version is Version.V16
    token = {"idToken": "T1", "type": "ISO14443"}
    return {
        "Authorize": {"idTag": "T1"} if v16 else {"idToken": token},
        "StartTransaction": {"connectorId": 1, "idTag": "T1", "meterStart": 0, "timestamp": "2024-01-01T00:00:00Z"},
        "StopTransaction": {"transactionId": 1, "idTag": "T1", "meterStop": 5, "timestamp": "2024-01-01T00:00:00Z"},
        "TransactionEvent": {"eventType": "Started", "idToken": token},
        "VatNumberValidation": {"vatNumber": "DE1", "evseId": 1},
    }.get(action, {})


@pytest.mark.parametrize("version", [Version.V16, Version.V20, Version.V201, Version.V21])
async def test_every_charger_action_has_a_valid_answer(version: Version) -> None:
    csms = CentralSystem(CsmsPolicy(), Tokens({}), Counter())
    state = SessionState("cp1", version, boot_status="Accepted")
    for action in sorted(charger_actions(version)):
        answer = await csms.answer(state, action, minimal_request(version, action))
        if compiled(version, action, True) is None:
            assert action == "NotifyPeriodicEventStream"  # a SEND: never answered
            continue
        validate(version, action, answer, response=True, strict=True)


async def test_boot_policy_and_preboot_gate() -> None:
    pending = CentralSystem(CsmsPolicy(boot=BootPolicy.PENDING, heartbeat_interval=42), Tokens({}), Counter())
    state = SessionState("cp1", Version.V201)
    assert pending.gate(state, "Heartbeat", "m1") is not None
    answer = await pending.answer(state, "BootNotification", {})
    assert answer["status"] == "Pending" and answer["interval"] == 42
    refusal = pending.gate(state, "StatusNotification", "m2")
    assert refusal is not None and refusal.kind.code(Version.V201) == "SecurityError"
    v16 = SessionState("cp2", Version.V16)
    assert pending.gate(v16, "Heartbeat", "m3") is None, "1.6 tolerates pre-boot messages by default"
    strict16 = CentralSystem(CsmsPolicy(v16_tolerate_preboot=False), Tokens({}), Counter())
    assert strict16.gate(v16, "Heartbeat", "m4") is not None


async def test_local_list_decisions() -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    tokens = Tokens({"OK": IdTokenRecord("OK", parent_id="G1"), "OLD": IdTokenRecord("OLD", expires_at=past),
                     "BAD": IdTokenRecord("BAD", status="Blocked")})
    csms = CentralSystem(CsmsPolicy(auth=AuthPolicy.LOCAL), tokens, Counter())
    state = SessionState("cp1", Version.V16, boot_status="Accepted")
    decisions = {t: (await csms.answer(state, "Authorize", {"idTag": t}))["idTagInfo"]
                 for t in ("OK", "OLD", "BAD", "NONE")}
    assert decisions == {"OK": {"status": "Accepted", "parentIdTag": "G1"}, "OLD": {"status": "Expired"},
                         "BAD": {"status": "Blocked"}, "NONE": {"status": "Invalid"}}


async def test_delegation_with_local_fallback() -> None:
    tokens = Tokens({"T1": IdTokenRecord("T1", status="Blocked")})
    answered = CentralSystem(CsmsPolicy(auth=AuthPolicy.DELEGATE), tokens, Counter(), Delegate({"status": "Accepted"}))
    silent = CentralSystem(CsmsPolicy(auth=AuthPolicy.DELEGATE), tokens, Counter(), Delegate(None))
    state = SessionState("cp1", Version.V201, boot_status="Accepted")
    request = {"idToken": {"idToken": "T1", "type": "ISO14443"}}
    assert (await answered.answer(state, "Authorize", request))["idTokenInfo"]["status"] == "Accepted"
    assert (await silent.answer(state, "Authorize", request))["idTokenInfo"]["status"] == "Blocked"


async def test_data_transfer_delegated_else_unknown_vendor() -> None:
    state = SessionState("cp1", Version.V16, boot_status="Accepted")
    plain = CentralSystem(CsmsPolicy(), Tokens({}), Counter())
    assert await plain.answer(state, "DataTransfer", {"vendorId": "x"}) == {"status": "UnknownVendorId"}
    delegated = CentralSystem(CsmsPolicy(delegate_data_transfer=True), Tokens({}), Counter(),
                              Delegate({"status": "Accepted", "data": "hi"}))
    assert await delegated.answer(state, "DataTransfer", {"vendorId": "x"}) == {"status": "Accepted", "data": "hi"}


async def test_transaction_ids_come_from_the_counter() -> None:
    counter = Counter()
    csms = CentralSystem(CsmsPolicy(), Tokens({}), counter)
    state = SessionState("cp1", Version.V16, boot_status="Accepted")
    request = minimal_request(Version.V16, "StartTransaction")
    ids = [(await csms.answer(state, "StartTransaction", request))["transactionId"] for _ in range(3)]
    assert ids == [1, 2, 3]


@pytest.mark.parametrize(("version", "reply", "expected"), [
    (Version.V16, {"status": "Unknown"}, "Invalid"),
    (Version.V16, {"status": "NoCredit", "parent_id": 7}, "Invalid"),
    (Version.V201, {"status": "Unknown"}, "Unknown"),
    (Version.V201, {"status": "Maybe"}, "Invalid"),
])
async def test_delegated_statuses_are_kept_to_the_version_vocabulary(version: Version, reply: dict,
                                                                      expected: str) -> None:
    """A back end answering in another version's words must not make the adapter's answer invalid."""
    csms = CentralSystem(CsmsPolicy(auth=AuthPolicy.DELEGATE), Tokens({}), Counter(), Delegate(reply))
    state = SessionState("cp1", version, boot_status="Accepted")
    request = minimal_request(version, "StartTransaction" if version is Version.V16 else "Authorize")
    answer = await csms.answer(state, "StartTransaction" if version is Version.V16 else "Authorize", request)
    info = answer["idTagInfo" if version is Version.V16 else "idTokenInfo"]
    assert info == {"status": expected}
    validate(version, "StartTransaction" if version is Version.V16 else "Authorize", answer, response=True,
             strict=True)


async def test_free_vend_transaction_gets_no_token_ruling() -> None:
    csms = CentralSystem(CsmsPolicy(auth=AuthPolicy.LOCAL), Tokens({}), Counter())
    state = SessionState("cp1", Version.V201, boot_status="Accepted")
    free = {"eventType": "Started", "idToken": {"idToken": "", "type": "NoAuthorization"}}
    assert await csms.answer(state, "TransactionEvent", free) == {}
    unknown = {"eventType": "Started", "idToken": {"idToken": "X", "type": "ISO14443"}}
    assert await csms.answer(state, "TransactionEvent", unknown) == {"idTokenInfo": {"status": "Invalid"}}


async def test_pending_charger_may_send_what_was_asked_for() -> None:
    """2.0.1 B02: while Pending, reports and triggered messages are answered; anything else is refused."""
    csms = CentralSystem(CsmsPolicy(boot=BootPolicy.PENDING), Tokens({}), Counter())
    state = SessionState("cp1", Version.V201)
    await csms.answer(state, "BootNotification", {})
    assert csms.gate(state, "NotifyReport", "m1") is None
    assert csms.gate(state, "StatusNotification", "m2") is not None
    state.sent("TriggerMessage", {"requestedMessage": "StatusNotification", "evse": {"id": 1}})
    state.sent("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"})
    assert csms.gate(state, "StatusNotification", "m3") is None
    assert csms.gate(state, "SignCertificate", "m4") is None
    assert csms.gate(state, "MeterValues", "m5") is not None
    rejected = SessionState("cp2", Version.V201, boot_status="Rejected")
    rejected.sent("TriggerMessage", {"requestedMessage": "Heartbeat"})
    assert csms.gate(rejected, "Heartbeat", "m6") is not None, "a rejected charger must boot again"


def test_a_resumed_session_keeps_boot_and_open_transactions_of_the_same_version() -> None:
    from adapter.normalize.transactions import OpenTransaction

    old = SessionState("cp1", Version.V201, boot_status="Accepted")
    old.book.open(OpenTransaction("tx1", 1, 1, "T", 100.0))
    resumed = SessionState("cp1", Version.V201, boot_status=None).resumed_from(old)
    assert resumed.boot_status == "Accepted" and resumed.book.get("tx1") is not None
    upgraded = SessionState("cp1", Version.V21).resumed_from(old)
    assert upgraded.boot_status is None and len(upgraded.book) == 0, "a new version means a reboot"
