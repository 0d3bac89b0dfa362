"""Which configuration writes set a charger's Basic auth password, and how they are recorded."""

import pytest

from adapter.security import password_change

PASSWORD = "rotated-Passw0rd-2026"


def _set_variables(*items: tuple[str, str, str]) -> dict:
    return {"setVariableData": [{"component": {"name": c}, "variable": {"name": v}, "attributeValue": value}
                                for c, v, value in items]}


@pytest.mark.parametrize(("operation", "payload", "expected"), [
    ("ChangeConfiguration", {"key": "AuthorizationKey", "value": PASSWORD}, PASSWORD),
    ("ChangeConfiguration", {"key": "authorizationkey", "value": PASSWORD}, PASSWORD),
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}, None),
    ("SetVariables", _set_variables(("OCPPCommCtrlr", "HeartbeatInterval", "60"),
                                    ("SecurityCtrlr", "BasicAuthPassword", PASSWORD)), PASSWORD),
    ("SetVariables", _set_variables(("SecurityCtrlr", "Identity", "cp1")), None),
    ("Reset", {"type": "Soft"}, None),
])
def test_which_requests_set_a_password(operation: str, payload: dict, expected: str | None) -> None:
    assert password_change.new_password(operation, payload) == expected


def test_redaction_hides_only_the_password_and_leaves_the_request_intact() -> None:
    payload = _set_variables(("OCPPCommCtrlr", "HeartbeatInterval", "60"),
                             ("SecurityCtrlr", "BasicAuthPassword", PASSWORD))
    hidden = password_change.redacted("SetVariables", payload)
    assert [i["attributeValue"] for i in hidden["setVariableData"]] == ["60", password_change.REDACTED]
    assert payload["setVariableData"][1]["attributeValue"] == PASSWORD, "what is sent is unchanged"
    plain = {"key": "HeartbeatInterval", "value": "60"}
    assert password_change.redacted("ChangeConfiguration", plain) is plain


def test_a_password_the_adapter_could_not_store_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as info:
        password_change.check("ChangeConfiguration", {"key": "AuthorizationKey", "value": "short"})
    assert "short" not in str(info.value)
    password_change.check("ChangeConfiguration", {"key": "AuthorizationKey", "value": PASSWORD})


def test_acceptance_is_read_from_the_password_variable_result() -> None:
    ok = {"setVariableResult": [
        {"attributeStatus": "Rejected", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "X"}},
        {"attributeStatus": "Accepted", "component": {"name": "SecurityCtrlr"},
         "variable": {"name": "BasicAuthPassword"}}]}
    assert password_change.accepted("SetVariables", ok)
    ok["setVariableResult"][1]["attributeStatus"] = "RebootRequired"
    assert not password_change.accepted("SetVariables", ok)
    assert password_change.accepted("ChangeConfiguration", {"status": "Accepted"})
    assert not password_change.accepted("ChangeConfiguration", {"status": "RebootRequired"})
