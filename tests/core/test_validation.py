"""Schema validation: strict codes per rule, lenient repairs with warnings."""

import pytest

from adapter.ocpp.connection import IncomingCall, IncomingResult, OcppConnection, Rejected
from adapter.ocpp.errors import OcppError
from adapter.ocpp.validation import validate
from adapter.ocpp.versions import Version

BOOT_201 = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}


@pytest.mark.parametrize(("payload", "version", "code"), [
    ({}, Version.V201, "OccurrenceConstraintViolation"),
    ({}, Version.V16, "OccurenceConstraintViolation"),
    ({"reason": "PowerUp", "chargingStation": {"model": 5, "vendorName": "V"}}, Version.V201,
     "TypeConstraintViolation"),
    ({"reason": "Nope", "chargingStation": {"model": "M", "vendorName": "V"}}, Version.V201,
     "PropertyConstraintViolation"),
    ({**BOOT_201, "extra": 1}, Version.V201, "FormatViolation"),
])
def test_strict_mode_maps_rules_to_codes(payload: dict, version: Version, code: str) -> None:
    action = "BootNotification"
    with pytest.raises(OcppError) as info:
        validate(version, action, payload, response=False, strict=True, message_id="m1")
    assert info.value.kind.code(version) == code
    assert info.value.message_id == "m1"


def test_lenient_mode_repairs_clear_meaning_and_reports_it() -> None:
    payload = {"connectorId": "1", "extra": True, "meterValue": [{
        "timestamp": "2024-05-01T10:00:00", "sampledValue": [{"value": 12, "measurand": "power.active.import"}]}]}
    fixed, warnings = validate(Version.V16, "MeterValues", payload, response=False, strict=False)
    assert fixed["connectorId"] == 1
    assert "extra" not in fixed
    sample = fixed["meterValue"][0]["sampledValue"][0]
    assert sample == {"value": "12", "measurand": "Power.Active.Import"}
    assert fixed["meterValue"][0]["timestamp"] == "2024-05-01T10:00:00Z"
    assert len(warnings) == 5
    assert payload["connectorId"] == "1", "the caller's payload is not mutated"


def test_lenient_mode_still_rejects_what_has_no_clear_meaning() -> None:
    with pytest.raises(OcppError) as info:
        validate(Version.V16, "StatusNotification", {"connectorId": 1, "status": "Available"}, response=False,
                 strict=False)
    assert info.value.kind.code(Version.V16) == "OccurenceConstraintViolation"


def test_unknown_action_is_not_implemented() -> None:
    with pytest.raises(OcppError) as info:
        validate(Version.V201, "MadeUp", {}, response=False, strict=False)
    assert info.value.kind.code(Version.V201) == "NotImplemented"


def test_explainer_is_compiled_only_for_a_first_rejection(monkeypatch: pytest.MonkeyPatch) -> None:
    """fastjsonschema takes up to 66 ms to compile a schema: valid traffic must never pay for it."""
    import fastjsonschema

    from adapter.ocpp.validation import CompiledSchema

    real_compile = fastjsonschema.compile
    compiles: list[object] = []
    monkeypatch.setattr(fastjsonschema, "compile", lambda *a, **k: compiles.append(a) or real_compile(*a, **k))
    check = CompiledSchema({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    assert check.accepts({"n": 1})
    assert not check.accepts({"n": "1"})
    assert compiles == []
    for _ in range(2):
        with pytest.raises(fastjsonschema.JsonSchemaValueException):
            check.explain({"n": "1"})
    assert len(compiles) == 1


@pytest.mark.parametrize(("action", "payload"), [
    ("Authorize", {"idTag": "A" * 21}),
    ("StopTransaction", {"transactionId": 1, "idTag": "B" * 25, "meterStop": 5, "timestamp": "2024-05-01T10:00:00Z"}),
    ("DataTransfer", {"vendorId": "V" * 256}),
    ("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M", "chargePointSerialNumber": "S" * 26}),
])
def test_lenient_mode_never_truncates_an_identifier(action: str, payload: dict) -> None:
    """Cut to 20 characters, a 21-character idTag would be authorized as whichever token those 20 name."""
    with pytest.raises(OcppError) as info:
        validate(Version.V16, action, payload, response=False, strict=False)
    assert info.value.kind.code(Version.V16) == "PropertyConstraintViolation"


def test_lenient_mode_truncates_free_text() -> None:
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Available", "info": "i" * 60}
    fixed, warnings = validate(Version.V16, "StatusNotification", payload, response=False, strict=False)
    assert fixed["info"] == "i" * 50 and len(warnings) == 1


@pytest.mark.parametrize("text", ["1e400", "-1e309"])
def test_lenient_mode_refuses_numbers_too_large_to_repair(text: str) -> None:
    """A string beyond float range has no integer meaning: a CALLERROR, not an OverflowError in the session."""
    payload = {"connectorId": text, "idTag": "T", "meterStart": 0, "timestamp": "2024-05-01T10:00:00Z"}
    with pytest.raises(OcppError) as info:
        validate(Version.V16, "StartTransaction", payload, response=False, strict=False)
    assert info.value.kind.code(Version.V16) == "TypeConstraintViolation"


@pytest.mark.parametrize("meter_start", ["123456789012345678901234", "1e20", "9.1e15", '"123456789012345678901234"',
                                         '"-9007199254740993"'])
def test_lenient_mode_refuses_integers_a_double_cannot_hold_exactly(meter_start: str) -> None:
    """orjson reads an integer beyond 64 bits as a double, already rounded: turned back into an integer it
    named another number (…685803008), one the event encoder then refused, and the charger got an
    InternalError. From 2**53 on an integral double is refused, read from a number or from a string."""
    conn = OcppConnection(Version.V16)
    rejected = conn.receive(f'[2,"m1","StartTransaction",{{"connectorId":1,"idTag":"T","meterStart":{meter_start},'
                            '"timestamp":"2024-05-01T10:00:00Z"}]')
    assert isinstance(rejected, Rejected)
    assert rejected.error.message_id == "m1" and rejected.error.kind.code(Version.V16) == "TypeConstraintViolation"
    exact = conn.receive('[2,"m2","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":9007199254740991.0,'
                         '"timestamp":"2024-05-01T10:00:00Z"}]')
    assert isinstance(exact, IncomingCall) and exact.payload["meterStart"] == 2**53 - 1


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(("version", "action", "payload", "field"), [
    (Version.V16, "StartTransaction",
     {"connectorId": 0, "idTag": "T", "meterStart": 0, "timestamp": "2024-05-01T10:00:00Z"}, "connectorId"),
    (Version.V16, "RemoteStartTransaction", {"connectorId": 0, "idTag": "T"}, "connectorId"),
    (Version.V201, "RequestStartTransaction", {"evseId": 0, "remoteStartId": 1,
                                               "idToken": {"idToken": "T", "type": "Central"}}, "evseId"),
    (Version.V20, "NotifyEVChargingNeeds", {"evseId": 0, "chargingNeeds": {"requestedEnergyTransfer": "DC"}},
     "evseId"),
    (Version.V21, "RequestStartTransaction", {"evseId": 0, "remoteStartId": 1,
                                              "idToken": {"idToken": "T", "type": "Central"}}, "evseId"),
])
def test_a_transaction_or_charging_need_on_connector_or_evse_0_is_refused(
        version: Version, action: str, payload: dict, field: str, strict: bool) -> None:
    """0 names the charger as a whole: a transaction started there became an event on EVSE 0, which no consumer
    can place. The specifications say "> 0" (1.6 in its text, 2.0.1 in the schemas' descriptions, 2.1 as a
    minimum); a back end's request gets invalid_request for it, a charger's message
    PropertyConstraintViolation."""
    with pytest.raises(OcppError, match="bigger than or equal to 1") as info:
        validate(version, action, payload, response=False, strict=strict, message_id="m1")
    assert info.value.kind.code(version) == "PropertyConstraintViolation"
    assert validate(version, action, {**payload, field: 1}, response=False, strict=strict)[0][field] == 1


@pytest.mark.parametrize("strict", [False, True])
def test_integers_past_64_bits_signed_and_negative_connector_ids_are_refused(strict: bool) -> None:
    """orjson reads up to 2**64 - 1 exactly and the schemas set no bound, but no store holds more than 2**63 - 1:
    the transaction of a connector 2**64 - 1 went unrecorded. Connector and EVSE ids are non-negative by every
    version's spec, though only 2.1's schemas say so."""
    def start(connector: int) -> dict:
        return {"connectorId": connector, "idTag": "T", "meterStart": 0, "timestamp": "2024-05-01T10:00:00Z"}

    assert validate(Version.V16, "StartTransaction", start(2**63 - 1), response=False, strict=strict)[1] == []
    for connector in (2**63, 2**64 - 1):
        with pytest.raises(OcppError) as info:
            validate(Version.V16, "StartTransaction", start(connector), response=False, strict=strict)
        assert info.value.kind.code(Version.V16) == "PropertyConstraintViolation"
    with pytest.raises(OcppError, match="bigger than or equal to 0"):  # the spec's bound, absent from 1.6's schemas
        validate(Version.V16, "StatusNotification", {"connectorId": -1, "errorCode": "NoError", "status": "Available"},
                 response=False, strict=strict)
    status = {"timestamp": "2024-05-01T10:00:00Z", "connectorStatus": "Available", "evseId": -1, "connectorId": 1}
    with pytest.raises(OcppError):
        validate(Version.V201, "StatusNotification", status, response=False, strict=strict)
    assert validate(Version.V201, "StatusNotification", {**status, "evseId": 0}, response=False, strict=strict)
    with pytest.raises(OcppError):
        validate(Version.V201, "TransactionEvent", {
            "eventType": "Started", "timestamp": "2024-05-01T10:00:00Z", "triggerReason": "Authorized",
            "seqNo": 2**63, "transactionInfo": {"transactionId": "t1"}}, response=False, strict=strict)


@pytest.mark.parametrize(("sent", "read"), [("6.800000000000001", 6.8), ("0.30000000000000004", 0.3),
                                            ("130849580.80000001", 130849580.8), ("6.85", None), ("6.81", None)])
@pytest.mark.parametrize("strict", [False, True])
def test_lenient_mode_reads_a_decimal_step_missed_by_float_noise(sent: str, read: float | None, strict: bool) -> None:
    """A 1.6 charger that computes its composite schedule's limits (68 * 0.1) reports 6.800000000000001, no
    multiple of 0.1: its answer was unusable and the back end got a call_error. A value truly between steps
    (6.85) is still refused, and strict mode refuses both."""
    conn = OcppConnection(Version.V16, strict=strict)
    message_id, _ = conn.start_call("GetCompositeSchedule", {"connectorId": 1, "duration": 60})
    answer = conn.receive(f'[3,"{message_id}",{{"status":"Accepted","chargingSchedule":{{"chargingRateUnit":"A",'
                          f'"chargingSchedulePeriod":[{{"startPeriod":0,"limit":{sent}}}]}}}}]')
    if read is None or strict:
        assert isinstance(answer, Rejected) and answer.failed is not None
        assert answer.failed.code == "PropertyConstraintViolation"
        return
    assert isinstance(answer, IncomingResult)
    assert answer.payload["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == read
    assert answer.warnings == [f"data.chargingSchedule.chargingSchedulePeriod[0].limit: {sent} normalized to "
                               f"{read} (multipleOf)"]


@pytest.mark.parametrize("strict", [True, False])
def test_timestamps_that_are_not_rfc3339_are_caught_in_both_modes(strict: bool) -> None:
    """fastjsonschema alone passes a '+0200' offset and a ':60' second; the verdict is RFC 3339's."""
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Available",
               "timestamp": "2024-06-01T12:00:00+0200"}
    if strict:
        with pytest.raises(OcppError) as info:
            validate(Version.V16, "StatusNotification", payload, response=False, strict=True)
        assert info.value.kind.code(Version.V16) == "PropertyConstraintViolation"
        assert info.value.details == {"path": "data.timestamp", "rule": "format"}
    else:
        fixed, warnings = validate(Version.V16, "StatusNotification", payload, response=False, strict=False)
        assert fixed["timestamp"] == "2024-06-01T12:00:00+02:00" and len(warnings) == 1
    nested = {"eventType": "Started", "timestamp": "2024-06-01T12:00:00Z", "triggerReason": "Authorized",
              "seqNo": 0, "transactionInfo": {"transactionId": "t"},
              "meterValue": [{"timestamp": "2024-06-01T12:00:60Z", "sampledValue": [{"value": 1}]}]}
    with pytest.raises(OcppError) as info:
        validate(Version.V201, "TransactionEvent", nested, response=False, strict=strict)
    assert info.value.details == {"path": "data.meterValue[0].timestamp", "rule": "format"}


@pytest.mark.parametrize("strict", [False, True])
def test_an_integral_float_in_a_2x_integer_field_is_read_as_the_integer(strict: bool) -> None:
    """2.x's schemas are draft 6, where 1.0 is an integer: valid in both modes, but passed on as 1.0 it keyed a
    per-connector shadow entry "1.0/2.0" beside "1/2", and a float in an integer column breaks an Athena query.
    It is read as 1, without a warning since nothing was wrong. In 1.6's draft-4 schemas 1.0 is no integer:
    repaired with a warning, or refused in strict mode, as before."""
    from adapter.normalize.canonical import normalize
    from adapter.normalize.transactions import TransactionBook

    conn = OcppConnection(Version.V201, strict=strict)
    call = conn.receive('[2,"m1","StatusNotification",{"timestamp":"2024-05-01T10:00:00Z",'
                        '"connectorStatus":"Occupied","evseId":1.0,"connectorId":2.0}]')
    assert isinstance(call, IncomingCall) and call.warnings == []
    assert call.payload["evseId"] == 1 and type(call.payload["evseId"]) is int
    data = normalize(Version.V201, "StatusNotification", call.payload, {}, TransactionBook())[0].data
    assert (type(data["evse_id"]), type(data["connector_id"])) == (int, int)
    message_id, _ = conn.start_call("GetVariables", {"getVariableData": [{"component": {"name": "C"},
                                                                          "variable": {"name": "V"}}]})
    answer = conn.receive(f'[3,"{message_id}",{{"getVariableResult":[{{"attributeStatus":"Accepted",'
                          '"component":{"name":"C","evse":{"id":1.0}},"variable":{"name":"V"}}]}]')
    assert isinstance(answer, IncomingResult)
    assert type(answer.payload["getVariableResult"][0]["component"]["evse"]["id"]) is int
    for fraction in ("1.5", "1e20"):  # not integral, or too large to be exact
        frame = (f'[2,"m2","StatusNotification",{{"timestamp":"2024-05-01T10:00:00Z","connectorStatus":"Occupied",'
                 f'"evseId":{fraction},"connectorId":2}}]')
        assert isinstance(conn.receive(frame), Rejected)
    payload = {"connectorId": 1.0, "errorCode": "NoError", "status": "Available"}
    if strict:
        with pytest.raises(OcppError, match="must be integer"):
            validate(Version.V16, "StatusNotification", payload, response=False, strict=True)
    else:
        assert validate(Version.V16, "StatusNotification", payload, response=False, strict=False) == (
            {**payload, "connectorId": 1}, ["data.connectorId: 1.0 normalized to 1 (type)"])
