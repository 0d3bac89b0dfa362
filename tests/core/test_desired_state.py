"""Desired shadow state as OCPP requests: what no request can express is refused before anything is sent."""

from typing import Any

import pytest

from adapter.csms.desired_state import charging_limit_request, configuration_request, outcome
from adapter.ocpp.validation import validate
from adapter.ocpp.versions import Version


@pytest.mark.parametrize(("key", "value"), [
    ("1", "16 A"),  # per EVSE: smart charging's business
    ("x", "16 A"),
    ("0", "-1 A"),
    ("0", "16 kW"),
    ("0", "16"),
    ("0", "16 A\n"),
    ("0", "1e3 W"),
    ("0", {"limit": 16, "unit": "A"}),  # a delta would carry only the fields that changed
    ("0", 16),
    ("0", None),
])
def test_a_charging_limit_no_request_can_express_is_refused(key: str, value: Any) -> None:
    with pytest.raises(ValueError, match=r"charging limit|EVSE ids"):
        charging_limit_request(Version.V16, key, value)


@pytest.mark.parametrize("version", list(Version))
@pytest.mark.parametrize("value", ["0 A", "11000.05 W", "32A", "none"])
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


def test_a_charging_limit_is_sent_in_its_unit_at_the_versions_precision() -> None:
    _, payload = charging_limit_request(Version.V16, "0", "11000.04 W")
    schedule = payload["csChargingProfiles"]["chargingSchedule"]
    assert (schedule["chargingRateUnit"], schedule["chargingSchedulePeriod"]) == (
        "W", [{"startPeriod": 0, "limit": 11000.0}])
    _, payload = charging_limit_request(Version.V201, "0", "32 A")
    schedule = payload["chargingProfile"]["chargingSchedule"][0]
    assert (schedule["chargingRateUnit"], schedule["chargingSchedulePeriod"]) == (
        "A", [{"startPeriod": 0, "limit": 32.0}])


def test_a_configuration_value_is_no_object() -> None:
    """A later delta of an object names only its changed fields, which would go out as the whole value."""
    with pytest.raises(ValueError, match="an object"):
        configuration_request(Version.V16, "MeterValuesSampledData", {"a": 1})
    assert configuration_request(Version.V16, "MeterValuesSampledData", ["Energy.Active.Import.Register"])[1] == {
        "key": "MeterValuesSampledData", "value": '["Energy.Active.Import.Register"]'}
