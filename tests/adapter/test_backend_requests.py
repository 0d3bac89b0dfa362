"""Back-end requests over MQTT: exactly one response each, for every transport outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.adapter.events import boot_2x, boot_16
from tests.conftest import MqttProbe


async def booted(connect: Any, name: str, subprotocol: str = "ocpp1.6") -> Any:
    cp = await connect(name, subprotocol)
    await cp.call("BootNotification", boot_16() if subprotocol == "ocpp1.6" else boot_2x())
    return cp


async def request(probe: MqttProbe, cp: str, request_id: str, operation: str, body: Any) -> dict[str, Any]:
    await probe.publish(f"req/v1/{cp}/DEFAULT/{request_id}/{operation}", body)
    return await probe.next_on(f"res/v1/{cp}/DEFAULT/{request_id}/{operation}")  # type: ignore[no-any-return]


async def subscribed(probe: MqttProbe, adapter: Any, cp: str) -> None:
    """Wait until the charger's request subscription is live (its MQTT connection is asynchronous)."""
    session = adapter.ctx.sessions[cp]
    await session.link.client.wait_connected(10)
    await probe.subscribe("res/v1/#")


async def test_round_trip_ok(adapter: Any, probe: MqttProbe, connect: Any) -> None:
    cp = await booted(connect, "cpA")
    await subscribed(probe, adapter, "cpA")

    async def charger() -> None:
        frame = await cp.next_call()
        assert frame[2:] == ["RemoteStartTransaction", {"connectorId": 1, "idTag": "TAG9"}]
        await cp.answer(frame, {"status": "Accepted"})

    answering = asyncio.create_task(charger())
    response = await request(probe, "cpA", "r1", "RemoteStartTransaction", {"connectorId": 1, "idTag": "TAG9"})
    await answering
    assert response["status"] == "ok" and response["payload"] == {"status": "Accepted"}
    assert (response["charger_id"], response["request_id"], response["error"]) == ("cpA", "r1", None)
    await asyncio.sleep(0)
    assert probe.on("res/v1/cpA/DEFAULT/r1/#") == [], "exactly one response"


async def test_call_error_and_queueing_behind_the_outstanding_call(adapter: Any, probe: MqttProbe,
                                                                     connect: Any) -> None:
    cp = await booted(connect, "cpB", "ocpp2.0.1")
    await subscribed(probe, adapter, "cpB")
    await probe.publish("req/v1/cpB/DEFAULT/q1/Reset", {"type": "Immediate"})
    await probe.publish("req/v1/cpB/DEFAULT/q2/Reset", {"type": "OnIdle"})
    first = await cp.next_call()
    assert cp.incoming_calls.empty(), "the second request waits for the first answer"
    await cp.ws.send(f'[4, "{first[1]}", "NotSupported", "no reset here", {{}}]')
    second = await cp.next_call()
    assert second[3] == {"type": "OnIdle"}
    await cp.answer(second, {"status": "Scheduled"})
    r1 = await probe.next_on("res/v1/cpB/DEFAULT/q1/Reset")
    r2 = await probe.next_on("res/v1/cpB/DEFAULT/q2/Reset")
    assert r1["status"] == "call_error" and r1["error"]["code"] == "NotSupported"
    assert r2["status"] == "ok" and r2["payload"] == {"status": "Scheduled"}


async def test_an_unusable_answer_is_a_call_error_at_once(adapter_factory: Any, probe: MqttProbe,
                                                          connect: Any) -> None:
    """Not a timeout at the request's deadline (here 60 s): the back end hears what the charger sent."""
    adapter = await adapter_factory(strict=True)
    cp = await booted(connect, "cpU", "ocpp2.0.1")
    await subscribed(probe, adapter, "cpU")
    await probe.publish("req/v1/cpU/DEFAULT/u1/Reset", {"payload": {"type": "Immediate"}, "timeout_s": 60})
    await probe.publish("req/v1/cpU/DEFAULT/u2/Reset", {"payload": {"type": "Immediate"}, "timeout_s": 60})
    first = await cp.next_call()
    await cp.ws.send(f'[3, "{first[1]}", {{"status": "Maybe"}}]')
    second = await cp.next_call()
    await cp.ws.send(f'[3, "{second[1]}"]')
    r1 = await probe.next_on("res/v1/cpU/DEFAULT/u1/Reset")
    r2 = await probe.next_on("res/v1/cpU/DEFAULT/u2/Reset")
    assert (r1["status"], r1["error"]["code"]) == ("call_error", "PropertyConstraintViolation")
    assert (r2["status"], r2["error"]["code"]) == ("call_error", "RpcFrameworkError")
    assert "unusable" in r2["error"]["description"]


async def test_timeout_then_late_answer_is_dropped(adapter: Any, probe: MqttProbe, connect: Any) -> None:
    cp = await booted(connect, "cpC")
    await subscribed(probe, adapter, "cpC")
    response = await request(probe, "cpC", "t1", "Reset", {"payload": {"type": "Soft"}, "timeout_s": 0.3})
    assert response["status"] == "timeout"
    frame = await cp.next_call()
    await cp.answer(frame, {"status": "Accepted"})  # late: logged and dropped
    follow = asyncio.create_task(request(probe, "cpC", "t2", "ClearCache", {}))
    clear = await cp.next_call()
    await cp.answer(clear, {"status": "Accepted"})
    assert (await follow)["status"] == "ok", "the session still works after a timeout"


async def test_a_charger_that_stops_reading_still_gets_the_request_answered_at_its_deadline(
        adapter: Any, probe: MqttProbe, connect: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A charger whose TCP window stays full blocks the WebSocket write itself: the deadline covers it too."""
    await booted(connect, "cpStall")
    await subscribed(probe, adapter, "cpStall")
    stalled = asyncio.Event()

    async def never_drains(text: str) -> None:
        stalled.set()
        await asyncio.Event().wait()
    monkeypatch.setattr(adapter.ctx.sessions["cpStall"].ws, "send", never_drains)
    response = await request(probe, "cpStall", "s1", "Reset", {"payload": {"type": "Soft"}, "timeout_s": 0.3})
    assert stalled.is_set() and response["status"] == "timeout"


async def test_not_connected(adapter: Any, probe: MqttProbe) -> None:
    await probe.subscribe("res/v1/#")
    response = await request(probe, "nobody", "n1", "Reset", {"type": "Soft"})
    assert response["status"] == "not_connected"


@pytest.mark.parametrize(("operation", "body", "fragment"), [
    ("Reset", {"type": "Sideways"}, "payload invalid for Reset"),
    ("Reset", b"{not json", "not JSON"),
    ("Reset", {"payload": {"type": "Soft"}, "timeout_s": 301}, "timeout_s must be a number of seconds"),
    ("Reset", {"payload": {"type": "Soft"}, "timeout_s": True}, "timeout_s must be a number of seconds"),
    ("Reset", {"payload": {"type": "Soft"}, "timeout_s": 0}, "at most 300"),
    ("BootNotification", {}, "not an OCPP 1.6 action a back end can send"),
    ("RequestStartTransaction", {"idToken": {"idToken": "x", "type": "Central"}, "remoteStartId": 1},
     "not an OCPP 1.6 action"),
])
async def test_invalid_requests(adapter: Any, probe: MqttProbe, connect: Any, operation: str, body: Any,
                                fragment: str) -> None:
    cp = await booted(connect, "cpD")
    await subscribed(probe, adapter, "cpD")
    response = await request(probe, "cpD", "bad1", operation, body)
    assert response["status"] == "invalid_request"
    assert fragment in response["error"]["description"]
    assert cp.incoming_calls.empty(), "nothing invalid reaches the charger"


def _profile(limit: float) -> dict[str, Any]:
    return {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 7, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": {
            "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}}}


async def test_float_noise_in_a_request_is_sent_as_the_nearest_step(adapter: Any, probe: MqttProbe,
                                                                     connect: Any) -> None:
    """A back end computing 68 * 0.1 writes 6.800000000000001, no multiple of 1.6's 0.1 A: the charger gets
    6.8 and the response says what was repaired. A value truly between steps is still refused."""
    cp = await booted(connect, "cpF")
    await subscribed(probe, adapter, "cpF")
    noisy = 68 * 0.1
    assert noisy != 6.8

    async def charger() -> None:
        frame = await cp.next_call()
        assert frame[3] == _profile(6.8)
        await cp.answer(frame, {"status": "Accepted"})

    answering = asyncio.create_task(charger())
    response = await request(probe, "cpF", "f1", "SetChargingProfile", _profile(noisy))
    await answering
    assert response["status"] == "ok"
    assert response["warnings"] == [
        "data.csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].limit: "
        "6.800000000000001 normalized to 6.8 (multipleOf)"]
    between = await request(probe, "cpF", "f2", "SetChargingProfile", _profile(6.85))
    assert between["status"] == "invalid_request" and "multiple of 0.1" in between["error"]["description"]
    assert "warnings" not in between
    unknown = await request(probe, "cpF", "f3", "SetChargingProfile", {**_profile(6.8), "note": 1})
    assert unknown["status"] == "invalid_request", "only float noise is repaired in a back end's request"
    assert cp.incoming_calls.empty()


async def test_strict_mode_sends_float_noise_back(adapter_factory: Any, probe: MqttProbe, connect: Any) -> None:
    adapter = await adapter_factory(strict=True)
    cp = await booted(connect, "cpS")
    await subscribed(probe, adapter, "cpS")
    response = await request(probe, "cpS", "s1", "SetChargingProfile", _profile(68 * 0.1))
    assert response["status"] == "invalid_request" and "multiple of 0.1" in response["error"]["description"]
    assert cp.incoming_calls.empty()


async def test_disconnect_answers_queued_requests(adapter: Any, probe: MqttProbe, connect: Any) -> None:
    cp = await booted(connect, "cpE")
    await subscribed(probe, adapter, "cpE")
    await probe.publish("req/v1/cpE/DEFAULT/d1/Reset", {"type": "Soft"})
    await cp.next_call()
    await probe.publish("req/v1/cpE/DEFAULT/d2/Reset", {"type": "Hard"})
    await cp.close()
    r1 = await probe.next_on("res/v1/cpE/DEFAULT/d1/Reset")
    r2 = await probe.next_on("res/v1/cpE/DEFAULT/d2/Reset")
    assert r1["status"] == r2["status"] == "not_connected"


async def test_a_slow_answer_never_stops_reading(adapter_factory: Any, probe: MqttProbe, connect: Any) -> None:
    """While the adapter waits (here on a silent delegate), the charger's answers to back-end CALLs still land."""
    adapter = await adapter_factory(auth_policy="delegate", delegate_timeout=3.0)
    cp = await booted(connect, "cpSlow")
    await subscribed(probe, adapter, "cpSlow")
    authorize = asyncio.create_task(cp.call("Authorize", {"idTag": "T"}))
    await probe.publish("req/v1/cpSlow/DEFAULT/s1/ClearCache", {})
    frame = await cp.next_call()
    await cp.answer(frame, {"status": "Accepted"})
    response = await probe.next_on("res/v1/cpSlow/DEFAULT/s1/ClearCache")
    assert response["status"] == "ok"
    assert not authorize.done(), "the request completed while the Authorize answer was still pending"
    assert (await authorize)[2]["idTagInfo"]["status"] == "Invalid"


async def test_a_request_the_adapter_fails_on_is_answered_and_the_next_one_served(
        adapter: Any, probe: MqttProbe, connect: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A failure inside the adapter before the CALL went out: answered adapter_error, logged once, and the
    queue goes on (the worker used to end, stranding every later request until the charger reconnected)."""
    cp = await booted(connect, "cpFail")
    await subscribed(probe, adapter, "cpFail")
    state_type = type(adapter.ctx.sessions["cpFail"].state)
    real_sent = state_type.sent

    def fails_once(state: Any, operation: str, payload: dict[str, Any]) -> None:
        monkeypatch.setattr(state_type, "sent", real_sent)
        raise RuntimeError("bookkeeping bug")
    monkeypatch.setattr(state_type, "sent", fails_once)
    failed = await request(probe, "cpFail", "f1", "Reset", {"type": "Soft"})
    assert failed["status"] == "adapter_error" and failed["payload"] is None
    assert failed["error"]["code"] == "InternalError" and "bookkeeping bug" in failed["error"]["description"]
    assert [r.getMessage() for r in caplog.records if "failed in the adapter" in r.getMessage()] == [
        "back-end request failed in the adapter"]
    follow = asyncio.create_task(request(probe, "cpFail", "f2", "ClearCache", {}))
    frame = await cp.next_call()
    assert frame[2] == "ClearCache", "the failed request never reached the charger"
    await cp.answer(frame, {"status": "Accepted"})
    assert (await follow)["status"] == "ok"


async def test_a_failure_after_the_call_went_out_frees_the_connection_for_the_next_request(
        adapter: Any, probe: MqttProbe, connect: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The charger got the CALL, but the adapter failed before its answer: the CALL is given up, so the
    charger's late answer is dropped and the next request is not refused as 'a call in progress'."""
    cp = await booted(connect, "cpFail2")
    await subscribed(probe, adapter, "cpFail2")
    session = adapter.ctx.sessions["cpFail2"]
    real_audit = session._audit_frame

    def audit_fails_once(direction: str, mtype: int, *args: Any) -> None:
        if (direction, mtype) == ("out", 2):
            monkeypatch.setattr(session, "_audit_frame", real_audit)
            raise OSError("audit disk full")
        real_audit(direction, mtype, *args)
    monkeypatch.setattr(session, "_audit_frame", audit_fails_once)
    failed = await request(probe, "cpFail2", "g1", "Reset", {"type": "Soft"})
    assert (failed["status"], failed["error"]["code"]) == ("adapter_error", "InternalError")
    first = await cp.next_call()
    await cp.answer(first, {"status": "Accepted"})  # too late: unmatched, dropped
    follow = asyncio.create_task(request(probe, "cpFail2", "g2", "ClearCache", {}))
    second = await cp.next_call()
    assert second[2] == "ClearCache"
    await cp.answer(second, {"status": "Accepted"})
    response = await follow
    assert (response["status"], response["payload"]) == ("ok", {"status": "Accepted"})
    assert probe.on("res/v1/cpFail2/DEFAULT/g1/#") == [], "exactly one response to the failed request"
