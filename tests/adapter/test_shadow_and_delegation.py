"""Device shadow (local stand-in service, reported state, desired configuration) and delegated decisions."""

from __future__ import annotations

import asyncio
from typing import Any

from adapter.bus.topic_handlers import topic_matches
from adapter.bus.topics import Topics
from adapter.csms.desired_state import CHARGING_LIMIT_PROFILE_ID
from adapter.store.base import IdTokenRecord
from tests.adapter.events import TOKEN_201, boot_2x, boot_16, check_event
from tests.conftest import MqttProbe


async def booted_with_shadow(adapter: Any, probe: MqttProbe, connect: Any, name: str, subprotocol: str) -> Any:
    """A booted charger whose session takes shadow deltas, with its shadow's update/accepted followed."""
    await probe.subscribe(f"$aws/things/{name}/shadow/update/accepted")
    cp = await connect(name, subprotocol)
    await cp.call("BootNotification", boot_16() if subprotocol == "ocpp1.6" else boot_2x())
    await adapter.ctx.sessions[name].link.client.wait_connected(10)
    return cp


async def test_local_shadow_service_versions_and_rejections(adapter: Any, probe: MqttProbe) -> None:
    await probe.subscribe("$aws/things/thing1/shadow/#")
    await probe.publish("$aws/things/thing1/shadow/update", {"state": {"desired": {"a": 1}}})
    accepted = await probe.next_on("$aws/things/thing1/shadow/update/accepted")
    assert accepted["version"] == 1
    delta = await probe.next_on("$aws/things/thing1/shadow/update/delta")
    assert delta["state"] == {"a": 1}
    await probe.publish("$aws/things/thing1/shadow/update", {"state": {"reported": {"a": 1}}, "version": 7})
    conflict = await probe.next_on("$aws/things/thing1/shadow/update/rejected")
    assert conflict["code"] == 409
    await probe.publish("$aws/things/thing1/shadow/update", b"[1]")
    assert (await probe.next_on("$aws/things/thing1/shadow/update/rejected"))["code"] == 400
    await probe.publish("$aws/things/thing1/shadow/update", {"state": {"reported": {"a": 1}}, "version": 1})
    documents = [await probe.next_on("$aws/things/thing1/shadow/update/documents") for _ in range(2)]
    assert documents[-1]["current"] == {"state": {"desired": {"a": 1}, "reported": {"a": 1}}, "version": 2}
    await probe.publish("$aws/things/thing1/shadow/get", {"clientToken": "c1"})
    got = await probe.next_on("$aws/things/thing1/shadow/get/accepted")
    assert got["version"] == 2 and got["clientToken"] == "c1"


async def test_desired_configuration_is_applied_and_reported(adapter: Any, probe: MqttProbe, connect: Any) -> None:
    for name, subprotocol, key in (("cpS", "ocpp1.6", "HeartbeatInterval"),
                                   ("cpS2", "ocpp2.0.1", "OCPPCommCtrlr.HeartbeatInterval")):
        cp = await booted_with_shadow(adapter, probe, connect, name, subprotocol)
        await probe.publish(f"$aws/things/{name}/shadow/update",
                            {"state": {"desired": {"configuration": {key: 60, "Bad Key": 1}}}})
        frame = await cp.next_call()
        if subprotocol == "ocpp1.6":
            assert frame[2:] == ["ChangeConfiguration", {"key": key, "value": "60"}]
            await cp.answer(frame, {"status": "Accepted"})
            frame = await cp.next_call()
            assert frame[3]["key"] == "Bad Key"
            await cp.answer(frame, {"status": "NotSupported"})
            expected = {key: "Accepted", "Bad Key": "NotSupported"}
        else:
            assert frame[2] == "SetVariables"
            assert frame[3]["setVariableData"][0]["variable"] == {"name": "HeartbeatInterval"}
            await cp.answer(frame, {"setVariableResult": [{"attributeStatus": "Accepted", "component": {
                "name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
            expected = {key: "Accepted", "Bad Key": "Invalid"}
        _, report = await probe.wait_for(
            lambda t, b, n=name: t == f"$aws/things/{n}/shadow/update/accepted"
            and "configuration_status" in b["state"].get("reported", {}))
        assert report["state"]["reported"]["configuration_status"] == expected
        assert report["state"]["reported"]["configuration"] == {key: 60}


async def test_configuration_desired_while_offline_is_applied_when_the_charger_may_be_sent_requests(
        adapter: Any, probe: MqttProbe, connect: Any) -> None:
    await probe.subscribe("$aws/things/+/shadow/update/accepted")
    await probe.subscribe("$aws/things/+/shadow/get/accepted")
    for name in ("cpOff", "cpOff2"):
        await probe.publish(f"$aws/things/{name}/shadow/update",
                            {"state": {"desired": {"configuration": {"OCPPCommCtrlr.HeartbeatInterval": 90}
                                                   if name == "cpOff2" else {"HeartbeatInterval": 90}}}})
        await probe.next_on(f"$aws/things/{name}/shadow/update/accepted")

    # 1.6 (pre-boot messages tolerated): at connect, before any boot
    cp = await connect("cpOff", "ocpp1.6")
    frame = await cp.next_call()
    assert frame[2:] == ["ChangeConfiguration", {"key": "HeartbeatInterval", "value": "90"}]
    await cp.answer(frame, {"status": "Accepted"})
    _, report = await probe.wait_for(lambda t, b: t == "$aws/things/cpOff/shadow/update/accepted"
                                      and "configuration_status" in b["state"].get("reported", {}))
    assert report["state"]["reported"]["configuration"] == {"HeartbeatInterval": 90}
    # the same change again, as a delta of a version already seen (it raced the document): not applied twice
    await probe.publish("$aws/things/cpOff/shadow/update/delta",
                        {"state": {"configuration": {"HeartbeatInterval": 90}}, "version": 1})
    await probe.publish("$aws/things/cpOff/shadow/update",
                        {"state": {"desired": {"configuration": {"MeterValueSampleInterval": 30}}}})
    frame = await cp.next_call()
    assert frame[2:] == ["ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"}]
    await cp.answer(frame, {"status": "Accepted"})
    await cp.close()
    # applied once: the next session finds nothing left to apply (its document, unlike the first's, has reports)
    await connect("cpOff", "ocpp1.6")
    _, document = await probe.wait_for(lambda t, b: t == "$aws/things/cpOff/shadow/get/accepted"
                                        and b["state"].get("reported", {}).get("configuration") is not None)
    assert "delta" not in document["state"] or "configuration" not in document["state"]["delta"]

    # 2.0.1: nothing may be sent before the boot is accepted, so the shadow is read after it
    cp2 = await connect("cpOff2", "ocpp2.0.1")
    assert (await cp2.call("BootNotification", boot_2x()))[2]["status"] == "Accepted"
    _, document = await probe.wait_for(lambda t, b: t == "$aws/things/cpOff2/shadow/get/accepted")
    assert document["state"]["delta"] == {"configuration": {"OCPPCommCtrlr.HeartbeatInterval": 90}}
    frame = await cp2.next_call()
    assert frame[2] == "SetVariables"
    assert frame[3]["setVariableData"][0]["attributeValue"] == "90"


async def test_delegated_authorization_with_deadline_and_fallback(adapter_factory: Any, probe: MqttProbe,
                                                                   connect: Any) -> None:
    adapter = await adapter_factory(auth_policy="delegate", delegate_timeout=0.5)
    await adapter.ctx.store.put_id_token(IdTokenRecord("LOCAL1", status="Blocked"))
    await probe.subscribe("ocpp/+/delegate/#")
    cp = await connect("cpG", "ocpp2.0.1")
    await cp.call("BootNotification", boot_2x())

    async def back_end() -> None:
        body = await probe.next_on("ocpp/cpG/delegate/Authorize")
        assert body["payload"] == {"id_token": "TAG1", "token_type": "ISO14443"}
        # Under the asking instance: with a wildcard over all of them, every instance heard every reply.
        assert body["reply_topic"] == f"delegate/v1/test-adapter/cpG/{body['request_id']}"
        assert not topic_matches(Topics().delegate_replies_to("test-adapter-w1"), body["reply_topic"])
        await probe.publish(body["reply_topic"], {"status": "Accepted"})

    answering = asyncio.create_task(back_end())
    reply = await cp.call("Authorize", {"idToken": TOKEN_201})
    await answering
    assert reply[2]["idTokenInfo"]["status"] == "Accepted"
    silent = await cp.call("Authorize", {"idToken": {"idToken": "LOCAL1", "type": "ISO14443"}})
    assert silent[2]["idTokenInfo"]["status"] == "Blocked", "no answer in time: the local list decides"


async def test_every_event_of_a_busy_charger_validates(adapter: Any, probe: MqttProbe, connect: Any) -> None:
    await probe.subscribe("ocpp/#")
    cp = await connect("cpV")
    await cp.call("BootNotification", boot_16())
    for action, payload in (("FirmwareStatusNotification", {"status": "Installed"}),
                            ("DiagnosticsStatusNotification", {"status": "Uploaded"}),
                            ("DataTransfer", {"vendorId": "acme", "data": "x"}),
                            ("SecurityEventNotification", {"type": "Tamper", "timestamp": "2024-01-01T00:00:00Z"})):
        await cp.call(action, payload)
    await probe.wait_for(lambda t, b: len(probe.on("ocpp/cpV/#")) >= 5)
    for body in probe.on("ocpp/cpV/#"):
        check_event(body)
    assert probe.on("ocpp/cpV/events/DataTransfer")[0]["data"]["response"] == {"status": "UnknownVendorId"}


NEW_PASSWORD = "rotated-Passw0rd-2026"


async def _registered(adapter: Any, charger_id: str) -> dict[str, str]:
    import base64

    from adapter.security.passwords import hash_password
    from adapter.store.base import ChargerRecord

    await adapter.ctx.store.upsert_charger(ChargerRecord(charger_id, password_hash=hash_password("first-Passw0rd-2025"),
                                                         security_profile=1))
    return {"Authorization": "Basic " + base64.b64encode(f"{charger_id}:first-Passw0rd-2025".encode()).decode()}


async def _admits(adapter: Any, charger_id: str, password: str) -> bool:
    from adapter.security.passwords import verify_password

    record = await adapter.ctx.store.get_charger(charger_id)
    return verify_password(record.password_hash, password)


async def test_a_password_rotated_over_ocpp_is_stored_hashed_and_never_recorded(
        adapter_factory: Any, probe: MqttProbe, connect: Any) -> None:
    """1.6 AuthorizationKey through a back-end request: refused when the adapter could not store it, else sent;
    once accepted the charger reconnects with it, so its hash replaces the stored one."""
    adapter = await adapter_factory(registration="known")
    cp = await connect("cpP", additional_headers=await _registered(adapter, "cpP"))
    await cp.call("BootNotification", boot_16())
    await adapter.ctx.sessions["cpP"].link.client.wait_connected(10)
    await probe.subscribe("res/v1/cpP/#")
    await probe.publish("req/v1/cpP/DEFAULT/p0/ChangeConfiguration", {"key": "AuthorizationKey", "value": "short"})
    refused = await probe.next_on("res/v1/cpP/DEFAULT/p0/ChangeConfiguration")
    assert refused["status"] == "invalid_request" and "short" not in refused["error"]["description"]
    await probe.publish("req/v1/cpP/DEFAULT/p1/ChangeConfiguration",
                        {"key": "AuthorizationKey", "value": NEW_PASSWORD})
    frame = await cp.next_call()
    assert frame[3] == {"key": "AuthorizationKey", "value": NEW_PASSWORD}
    await cp.answer(frame, {"status": "Accepted"})
    assert (await probe.next_on("res/v1/cpP/DEFAULT/p1/ChangeConfiguration"))["status"] == "ok"
    await adapter.ctx.store.flush()
    frames = [entry.frame for entry in await adapter.ctx.store.list_audit("cpP")]
    assert any('"AuthorizationKey"' in f for f in frames)
    assert not any(NEW_PASSWORD in f for f in frames), "the audit log never holds a password"
    assert await _admits(adapter, "cpP", NEW_PASSWORD)


async def test_a_password_desired_in_the_shadow_is_masked_and_removed_once_applied(
        adapter_factory: Any, probe: MqttProbe, connect: Any) -> None:
    adapter = await adapter_factory(registration="known")
    cp = await connect("cpQ", "ocpp2.0.1", additional_headers=await _registered(adapter, "cpQ"))
    await cp.call("BootNotification", boot_2x())
    await adapter.ctx.sessions["cpQ"].link.client.wait_connected(10)
    await probe.subscribe("$aws/things/cpQ/shadow/update/accepted")
    key = "SecurityCtrlr.BasicAuthPassword"
    await probe.publish("$aws/things/cpQ/shadow/update", {"state": {"desired": {"configuration": {key: NEW_PASSWORD}}}})
    frame = await cp.next_call()
    assert frame[3]["setVariableData"][0]["attributeValue"] == NEW_PASSWORD
    await cp.answer(frame, {"setVariableResult": [{"attributeStatus": "Accepted", "component": {
        "name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}]})
    _, report = await probe.wait_for(lambda t, b: "configuration_status" in b["state"].get("reported", {}))
    assert report["state"]["reported"]["configuration"] == {key: "********"}
    assert report["state"]["desired"] == {"configuration": {key: None}}
    await probe.subscribe("$aws/things/cpQ/shadow/get/accepted")
    await probe.publish("$aws/things/cpQ/shadow/get", {"clientToken": "doc"})
    document = await probe.next_on("$aws/things/cpQ/shadow/get/accepted")
    assert key not in document["state"].get("desired", {}).get("configuration", {})
    assert NEW_PASSWORD not in str(document), "the shadow no longer holds the password"
    assert await _admits(adapter, "cpQ", NEW_PASSWORD)


async def test_desired_availability_is_applied_and_reported(adapter: Any, probe: MqttProbe, connect: Any) -> None:
    """DESIGN §3's deltas carry availability too: EVSE id (1.6: connector id; "0" the whole charger) to
    Operative or Inoperative, sent as ChangeAvailability in each version's shape."""
    for name, subprotocol in (("cpAv", "ocpp1.6"), ("cpAv2", "ocpp2.0.1")):
        cp = await booted_with_shadow(adapter, probe, connect, name, subprotocol)
        await probe.publish(f"$aws/things/{name}/shadow/update", {"state": {"desired": {"availability": {
            "0": "Operative", "2": "Inoperative", "x": "Inoperative", "1": "Closed"}}}})
        whole = await cp.next_call()
        await cp.answer(whole, {"status": "Accepted"})
        evse = await cp.next_call()
        await cp.answer(evse, {"status": "Scheduled"})
        if subprotocol == "ocpp1.6":
            assert whole[2:] == ["ChangeAvailability", {"connectorId": 0, "type": "Operative"}]
            assert evse[2:] == ["ChangeAvailability", {"connectorId": 2, "type": "Inoperative"}]
        else:
            assert whole[2:] == ["ChangeAvailability", {"operationalStatus": "Operative"}]
            assert evse[2:] == ["ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 2}}]
        _, report = await probe.wait_for(
            lambda t, b, n=name: t == f"$aws/things/{n}/shadow/update/accepted"
            and "availability_status" in b["state"].get("reported", {}))
        reported = report["state"]["reported"]
        assert reported["availability_status"] == {"0": "Accepted", "2": "Scheduled", "x": "Invalid", "1": "Invalid"}
        assert reported["availability"] == {"0": "Operative", "2": "Inoperative"}
        assert cp.incoming_calls.empty(), "nothing was sent for the invalid keys"


async def test_a_desired_key_that_would_make_an_invalid_request_is_never_sent(adapter: Any, probe: MqttProbe,
                                                                             connect: Any) -> None:
    """These requests skip the back-end requests' validation: a 1.6 key over 50 characters went to the charger."""
    cp = await booted_with_shadow(adapter, probe, connect, "cpLong", "ocpp1.6")
    long_key = "K" * 51
    await probe.publish("$aws/things/cpLong/shadow/update", {"state": {"desired": {"configuration": {
        long_key: 1, "HeartbeatInterval": 30}}}})
    frame = await cp.next_call()
    assert frame[2:] == ["ChangeConfiguration", {"key": "HeartbeatInterval", "value": "30"}]
    await cp.answer(frame, {"status": "Accepted"})
    _, report = await probe.wait_for(lambda t, b: "configuration_status" in b["state"].get("reported", {}))
    assert report["state"]["reported"]["configuration_status"] == {long_key: "Invalid", "HeartbeatInterval": "Accepted"}


async def limit_set(probe: MqttProbe, cp: Any, name: str, subprotocol: str, value: str, expected: float) -> None:
    """Desire a charging limit (and a per-EVSE one, refused); check the profile sent, accept it, await the report."""
    await probe.publish(f"$aws/things/{name}/shadow/update",
                        {"state": {"desired": {"charging_limit": {"0": value, "1": "16 A"}}}})
    frame = await cp.next_call()
    assert frame[2] == "SetChargingProfile"
    if subprotocol == "ocpp1.6":
        assert frame[3]["connectorId"] == 0
        profile = frame[3]["csChargingProfiles"]
        assert (profile["chargingProfileId"], profile["chargingProfilePurpose"]) == (
            CHARGING_LIMIT_PROFILE_ID, "ChargePointMaxProfile")
        schedule = profile["chargingSchedule"]
    else:
        assert frame[3]["evseId"] == 0
        profile = frame[3]["chargingProfile"]
        assert (profile["id"], profile["chargingProfilePurpose"]) == (
            CHARGING_LIMIT_PROFILE_ID, "ChargingStationMaxProfile")
        schedule = profile["chargingSchedule"][0]
    assert (profile["stackLevel"], profile["chargingProfileKind"]) == (0, "Absolute")
    assert (schedule["chargingRateUnit"], schedule["chargingSchedulePeriod"]) == (
        "W", [{"startPeriod": 0, "limit": expected}])
    await cp.answer(frame, {"status": "Accepted"})
    _, report = await probe.wait_for(
        lambda t, b: t == f"$aws/things/{name}/shadow/update/accepted"
        and b["state"].get("reported", {}).get("charging_limit") == {"0": value})
    assert report["state"]["reported"]["charging_limit_status"] == {"0": "Accepted", "1": "Invalid"}


async def test_a_desired_charging_limit_sets_changes_and_clears_the_chargers_maximum_profile(
        adapter: Any, probe: MqttProbe, connect: Any) -> None:
    """DESIGN §3's deltas carry a charging limit: the whole charger's maximum profile, one id the adapter owns.
    A limit is one string ("22000 W"), since a delta names only the fields that changed: a second limit in the
    same unit, as {"limit", "unit"}, would arrive without its unit."""
    for name, subprotocol in (("cpLim", "ocpp1.6"), ("cpLim2", "ocpp2.1")):
        cp = await booted_with_shadow(adapter, probe, connect, name, subprotocol)
        await limit_set(probe, cp, name, subprotocol, "6800.04 W", 6800.0)  # 1.6: steps of 0.1
        await limit_set(probe, cp, name, subprotocol, "11000 W", 11000.0)
        await probe.publish(f"$aws/things/{name}/shadow/update",
                            {"state": {"desired": {"charging_limit": {"0": "none", "1": None}}}})
        frame = await cp.next_call()
        key = "id" if subprotocol == "ocpp1.6" else "chargingProfileId"
        assert frame[2:] == ["ClearChargingProfile", {key: CHARGING_LIMIT_PROFILE_ID}]
        await cp.answer(frame, {"status": "Unknown"})  # none was set: as desired all the same
        _, report = await probe.wait_for(
            lambda t, b, n=name: t == f"$aws/things/{n}/shadow/update/accepted"
            and b["state"].get("reported", {}).get("charging_limit") == {"0": "none"})
        assert report["state"]["reported"]["charging_limit_status"] == {"0": "Unknown"}
        assert cp.incoming_calls.empty(), "nothing was sent for key 1, a per-EVSE limit"
