"""Desired shadow state as OCPP requests: what no request can express is refused before anything is sent."""

from typing import Any

import pytest

from adapter.csms.desired_state import charging_limit_request, outcome
from adapter.ocpp.validation import validate
from adapter.ocpp.versions import Version


@pytest.mark.parametrize(("key", "value"), [
    ("1", {"limit": 16, "unit": "A"}),  # per EVSE: smart charging's business
    ("x", {"limit": 16, "unit": "A"}),
    ("0", {"limit": -1, "unit": "A"}),
    ("0", {"limit": True, "unit": "A"}),
    ("0", {"limit": "16", "unit": "A"}),
    ("0", {"limit": 16, "unit": "kW"}),
    ("0", {"limit": 16}),
    ("0", 16),
    ("0", None),
])
def test_a_charging_limit_no_request_can_express_is_refused(key: str, value: Any) -> None:
    with pytest.raises(ValueError, match=r"charging limit|EVSE ids"):
        charging_limit_request(Version.V16, key, value)


@pytest.mark.parametrize("version", list(Version))
@pytest.mark.parametrize("value", [{"limit": 0, "unit": "A"}, {"limit": 11000.05, "unit": "W"}, "none"])
def test_charging_limit_requests_are_valid_in_every_version(version: Version, value: Any) -> None:
    operation, payload = charging_limit_request(version, "0", value)
    validate(version, operation, payload, response=False, strict=True)


def test_outcomes() -> None:
    assert outcome("SetChargingProfile", {"status": "ok", "payload": {"status": "Rejected"}}) == ("Rejected", False)
    assert outcome("ClearChargingProfile", {"status": "ok", "payload": {"status": "Unknown"}}) == ("Unknown", True)
    assert outcome("ChangeAvailability", {"status": "ok", "payload": {"status": "Scheduled"}}) == ("Scheduled", True)
    assert outcome("Reset", {"status": "timeout", "payload": None}) == ("timeout", False)
    assert outcome("SetVariables", {"status": "ok", "payload": {"setVariableResult": [
        {"attributeStatus": "RebootRequired"}]}}) == ("RebootRequired", True)
