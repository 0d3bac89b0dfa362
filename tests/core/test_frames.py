"""Frame parsing: every malformed shape gets the version's exact error code and the right message id."""

import pytest

from adapter.ocpp import frames
from adapter.ocpp.errors import OcppError
from adapter.ocpp.frames import Call, CallError, CallResult
from adapter.ocpp.versions import Version

V16, V201, V21 = Version.V16, Version.V201, Version.V21


@pytest.mark.parametrize(("text", "version", "code", "message_id"), [
    ("not json", V16, "FormationViolation", "-1"),
    ("not json", V201, "FormatViolation", "-1"),
    ('{"a": 1}', V16, "FormationViolation", "-1"),
    ('{"a": 1}', V201, "RpcFrameworkError", "-1"),
    ("[]", V201, "RpcFrameworkError", "-1"),
    ('[9, "abc", "Heartbeat", {}]', V201, "MessageTypeNotSupported", "abc"),
    ('[9, "abc", "Heartbeat", {}]', V16, "FormationViolation", "abc"),
    ('["2", "abc", "Heartbeat", {}]', V201, "RpcFrameworkError", "abc"),
    ('[2, 17, "Heartbeat", {}]', V201, "RpcFrameworkError", "-1"),
    ('[2, "' + "x" * 37 + '", "Heartbeat", {}]', V201, "RpcFrameworkError", "-1"),
    ('[2, "abc", "Heartbeat"]', V201, "RpcFrameworkError", "abc"),
    ('[2, "abc", "Heartbeat", []]', V16, "FormationViolation", "abc"),
    ('[3, "abc"]', V201, "RpcFrameworkError", "abc"),
    ('[4, "abc", "GenericError"]', V201, "RpcFrameworkError", "abc"),
    ('[6, "abc", "NotifyPeriodicEventStream", {}]', V201, "MessageTypeNotSupported", "abc"),
    ('[5, "abc", "GenericError", "x", {}]', V201, "MessageTypeNotSupported", "abc"),
    # Valid JSON with a number orjson cannot hold: answered with the message's own id, not -1.
    ('[2, "abc", "Heartbeat", {"x": 1e400}]', V16, "PropertyConstraintViolation", "abc"),
    ('[2, "abc", "Heartbeat", {"x": -1e400}]', V201, "PropertyConstraintViolation", "abc"),
    ('[6, "abc", "NotifyPeriodicEventStream", {"x": 1e400}]', V21, "PropertyConstraintViolation", "abc"),
    ('[3, "abc", {"x": 1e400}]', V201, "PropertyConstraintViolation", "abc"),
    ('[2, "abc", "Heartbeat", {"x": "\\ud800"}]', V16, "PropertyConstraintViolation", "abc"),
    ('[2, "abc", "Heartbeat", [1e400]]', V201, "RpcFrameworkError", "abc"),
    ('[2, "abc", "Heartbeat", {"x": NaN}]', V201, "FormatViolation", "-1"),  # not JSON at all
    ('[2, "abc", "Heartbeat", {"x": 1' + "0" * 5000 + '}]', V201, "FormatViolation", "-1"),
])
def test_malformed_frames_get_the_versions_error(text: str, version: Version, code: str, message_id: str) -> None:
    with pytest.raises(OcppError) as info:
        frames.parse(text, version)
    assert info.value.kind.code(version) == code
    assert info.value.message_id == message_id


def test_well_formed_frames_round_trip() -> None:
    call = frames.parse('[2, "m1", "Heartbeat", {}]', V16)
    assert call == Call("m1", "Heartbeat", {})
    assert frames.parse('[3, "m1", {"a": 1}]', V16) == CallResult("m1", {"a": 1})
    assert frames.parse('[4, "m1", "NotSupported", "nope", {}]', V16) == CallError("m1", "NotSupported", "nope", {})
    assert frames.parse(frames.dumps(call), V16) == call


def test_v21_send_and_callresulterror() -> None:
    send = frames.parse('[6, "s1", "NotifyPeriodicEventStream", {"id": 1}]', V21)
    assert isinstance(send, Call) and send.unconfirmed
    error = frames.parse('[5, "r1", "FormatViolation", "bad result", {}]', V21)
    assert isinstance(error, CallError) and error.about_result
    assert frames.dumps(error).startswith("[5,")
