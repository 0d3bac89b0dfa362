"""The sans-I/O connection: one outstanding CALL, correlation, and what is sent back."""

import orjson
import pytest

from adapter.ocpp.connection import (
    CallInProgress,
    IncomingCall,
    IncomingError,
    IncomingResult,
    OcppConnection,
    Rejected,
    Unmatched,
)
from adapter.ocpp.versions import Version


def test_charger_call_is_validated_and_answered_exactly() -> None:
    conn = OcppConnection(Version.V16)
    event = conn.receive('[2, "a1", "Heartbeat", {}]')
    assert isinstance(event, IncomingCall) and event.action == "Heartbeat"
    text = conn.result(event, {"currentTime": "2024-01-01T00:00:00Z"})
    assert orjson.loads(text) == [3, "a1", {"currentTime": "2024-01-01T00:00:00Z"}]


def test_backend_action_from_charger_is_not_supported() -> None:
    conn = OcppConnection(Version.V201)
    event = conn.receive('[2, "a1", "Reset", {"type": "Immediate"}]')
    assert isinstance(event, Rejected)
    assert orjson.loads(event.reply or "")[:3] == [4, "a1", "NotSupported"]
    unknown = conn.receive('[2, "a2", "Teleport", {}]')
    assert isinstance(unknown, Rejected) and orjson.loads(unknown.reply or "")[2] == "NotImplemented"


def test_one_outstanding_call_and_correlation() -> None:
    conn = OcppConnection(Version.V16)
    message_id, text = conn.start_call("Reset", {"type": "Soft"})
    assert orjson.loads(text) == [2, message_id, "Reset", {"type": "Soft"}]
    with pytest.raises(CallInProgress):
        conn.start_call("Reset", {"type": "Hard"})
    assert isinstance(conn.receive('[3, "other", {"status": "Accepted"}]'), Unmatched)
    result = conn.receive(f'[3, "{message_id}", {{"status": "Accepted"}}]')
    assert isinstance(result, IncomingResult) and result.action == "Reset"
    assert conn.pending is None


def test_call_error_and_abandoned_call() -> None:
    conn = OcppConnection(Version.V201)
    message_id, _ = conn.start_call("Reset", {"type": "Immediate"})
    error = conn.receive(f'[4, "{message_id}", "NotSupported", "no", {{}}]')
    assert isinstance(error, IncomingError) and error.code == "NotSupported"
    late_id, _ = conn.start_call("Reset", {"type": "Immediate"})
    conn.abandon_call(late_id)
    assert isinstance(conn.receive(f'[3, "{late_id}", {{"status": "Accepted"}}]'), Unmatched)


def test_invalid_result_in_21_gets_callresulterror_but_never_a_callerror_before() -> None:
    for version, expected in ((Version.V201, None), (Version.V21, 5)):
        conn = OcppConnection(version, strict=True)
        message_id, _ = conn.start_call("Reset", {"type": "Immediate"})
        event = conn.receive(f'[3, "{message_id}", {{"status": "Maybe"}}]')
        assert isinstance(event, Rejected)
        assert (orjson.loads(event.reply)[0] if event.reply else None) == expected


@pytest.mark.parametrize("version", [Version.V16, Version.V201, Version.V21])
@pytest.mark.parametrize(("answer", "is_result"), [('{"status": "Maybe"}', True), ("", True), ("5", False),
                                                    ('{"status": 1e400}', True)])
def test_an_unusable_answer_ends_the_outstanding_call_as_a_call_error(version: Version, answer: str,
                                                                       is_result: bool) -> None:
    """Its requester hears at once instead of at its deadline; only a CALL is ever answered with a CALLERROR."""
    conn = OcppConnection(version, strict=True)
    message_id, _ = conn.start_call("Reset", {"type": "Soft" if version is Version.V16 else "Immediate"})
    frame = (f'[3, "{message_id}", {answer}]' if answer.startswith("{") else
             f'[3, "{message_id}"]' if is_result else f'[4, "{message_id}", "GenericError", {answer}]')
    event = conn.receive(frame)
    assert isinstance(event, Rejected) and event.failed is not None
    assert (event.failed.message_id, event.failed.action) == (message_id, "Reset")
    assert event.failed.code in ("RpcFrameworkError", "FormatViolation", "PropertyConstraintViolation",
                                 "FormationViolation")
    assert conn.pending is None
    expected_reply = 5 if version is Version.V21 and is_result else None
    assert (orjson.loads(event.reply)[0] if event.reply else None) == expected_reply
    other = conn.receive('[3, "someone-else"]')
    assert isinstance(other, Rejected) and other.failed is None
    assert (other.reply is None) == (version is not Version.V21)


def test_send_is_never_answered() -> None:
    conn = OcppConnection(Version.V21)
    unrepresentable = conn.receive('[6, "s0", "NotifyPeriodicEventStream", {"id": 1e400}]')
    assert isinstance(unrepresentable, Rejected) and unrepresentable.reply is None
    event = conn.receive('[6, "s1", "NotifyPeriodicEventStream", '
                         '{"id": 1, "pending": 0, "basetime": "2024-01-01T00:00:00Z", "data": [{"t": 0, "v": "1"}]}]')
    assert isinstance(event, IncomingCall) and event.unconfirmed
