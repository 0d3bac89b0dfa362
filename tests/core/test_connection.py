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


def test_send_is_never_answered() -> None:
    conn = OcppConnection(Version.V21)
    event = conn.receive('[6, "s1", "NotifyPeriodicEventStream", '
                         '{"id": 1, "pending": 0, "basetime": "2024-01-01T00:00:00Z", "data": [{"t": 0, "v": "1"}]}]')
    assert isinstance(event, IncomingCall) and event.unconfirmed
