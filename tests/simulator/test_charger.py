"""A simulated charger against a tiny central system: behaviour, schema validity, requests answered."""

from __future__ import annotations

import random

import pytest

from simulator.requests import limit_profile, requests_for
from tests.simulator.csms import Received, TinyCsms
from tests.simulator.helpers import VERSIONS, running, samples, tx_id
from tests.simulator.schemas import validate


def _event(r: Received, event_type: str) -> bool:
    return r.action == "TransactionEvent" and r.payload["eventType"] == event_type


def _is_stop(r: Received) -> bool:
    return r.action == "StopTransaction" or _event(r, "Ended")


def _is_start(r: Received) -> bool:
    return r.action == "StartTransaction" or _event(r, "Started")


def _meter(r: Received) -> bool:
    return r.action == "MeterValues" or _event(r, "Updated")


def _metered(r: Received) -> bool:
    return _meter(r) and "Current.Import" in samples(r.payload)


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_whole_session_is_valid_ocpp(version: str) -> None:
    async with TinyCsms(heartbeat_interval=1) as csms, running(
            csms.url, version, idle_mean_s=0.05, session_mean_s=2.5, connectors=2):
        await csms.wait_for(lambda: any(_is_stop(r) for r in csms.received)
                            and any(_metered(r) for r in csms.received) and csms.of("sim-t-1", "Heartbeat"))
    actions = [r.action for r in csms.received]
    assert actions[0] == "BootNotification"
    assert "Authorize" in actions
    assert any(_is_start(r) for r in csms.received)
    assert any(_metered(r) for r in csms.received)
    assert csms.invalid == []


async def test_a_pending_boot_is_retried_until_accepted() -> None:
    async with TinyCsms(pending_boots=2) as csms, running(csms.url, "2.0.1"):
        await csms.wait_for(lambda: csms.of("sim-t-1", "StatusNotification"))
    boots = csms.of("sim-t-1", "BootNotification")
    assert len(boots) == 3
    assert csms.received.index(boots[-1]) < csms.received.index(csms.of("sim-t-1", "StatusNotification")[0])


@pytest.mark.parametrize("version", VERSIONS)
async def test_every_backend_request_is_answered_validly(version: str) -> None:
    async with TinyCsms() as csms, running(csms.url, version, connectors=2) as (_, stats):
        await csms.wait_for(lambda: csms.of("sim-t-1", "StatusNotification"))
        for action, payload in requests_for(version, 2, random.Random(1)):
            validate(version, action, payload)
            answer = await csms.call("sim-t-1", action, payload)
            assert isinstance(answer, dict), (action, answer)
        unknown = await csms.call("sim-t-1", "CancelReservation", {"reservationId": 1})
        assert unknown == ("error", "NotImplemented")
        malformed = await csms.call("sim-t-1", "Reset", {})
        assert malformed[0] == "error"
    assert csms.invalid == []
    assert stats.requests_answered["DataTransfer"] == 1


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_charging_profile_limits_the_current_drawn(version: str) -> None:
    def meter_after(index: int) -> dict[str, float] | None:
        later = [r for r in csms.received[index:] if _metered(r)]
        return samples(later[-1].payload) if len(later) >= 2 else None  # the second one is wholly after

    async with TinyCsms() as csms, running(csms.url, version, idle_mean_s=0.0):
        first = await csms.wait_for(lambda: meter_after(0))
        assert first["Current.Import"] == 32.0

        assert await csms.call("sim-t-1", "SetChargingProfile", limit_profile(version, 10.0)) == {
            "status": "Accepted"}
        mark = len(csms.received)
        limited = await csms.wait_for(lambda: meter_after(mark))
        assert limited["Current.Import"] == 10.0
        assert limited["Power.Active.Import"] == 10.0 * 230 * 3

        clear = {"id": 100} if version == "1.6" else {"chargingProfileId": 100}
        assert await csms.call("sim-t-1", "ClearChargingProfile", clear) == {"status": "Accepted"}
        mark = len(csms.received)
        restored = await csms.wait_for(lambda: meter_after(mark))
        assert restored["Current.Import"] == 32.0
    assert csms.invalid == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_remote_start_then_remote_stop(version: str) -> None:
    async with TinyCsms() as csms, running(csms.url, version):
        await csms.wait_for(lambda: csms.of("sim-t-1", "StatusNotification"))
        if version == "1.6":
            start = ("RemoteStartTransaction", {"connectorId": 1, "idTag": "REMOTE1"})
        else:
            start = ("RequestStartTransaction", {"evseId": 1, "remoteStartId": 42,
                                                 "idToken": {"idToken": "REMOTE1", "type": "ISO14443"}})
        assert await csms.call("sim-t-1", *start) == {"status": "Accepted"}
        started = await csms.wait_for(lambda: [r for r in csms.received if _is_start(r)])
        transaction = tx_id(started[0].payload) if version != "1.6" else 1
        stop_action = "RemoteStopTransaction" if version == "1.6" else "RequestStopTransaction"
        stop = await csms.call("sim-t-1", stop_action, {"transactionId": transaction})
        assert stop == {"status": "Accepted"}
        stopped = await csms.wait_for(lambda: [r for r in csms.received if _is_stop(r)])
    assert not csms.of("sim-t-1", "Authorize")  # AuthorizeRemoteTxRequests is false
    if version == "1.6":
        assert stopped[0].payload["reason"] == "Remote"
    else:
        assert started[0].payload["transactionInfo"]["remoteStartId"] == 42
        assert stopped[0].payload["transactionInfo"]["stoppedReason"] == "Remote"
    assert csms.invalid == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_reset_reboots_and_boots_again(version: str) -> None:
    async with TinyCsms() as csms, running(csms.url, version, idle_mean_s=0.0) as (_, stats):
        await csms.wait_for(lambda: any(_is_start(r) for r in csms.received))
        payload = {"type": "Hard"} if version == "1.6" else {"type": "Immediate"}
        assert await csms.call("sim-t-1", "Reset", payload) == {"status": "Accepted"}
        await csms.wait_for(lambda: len(csms.of("sim-t-1", "BootNotification")) == 2)
    assert any(_is_stop(r) for r in csms.received)
    assert csms.connects["sim-t-1"] == 2
    assert stats.disconnects == 0
    if version != "1.6":
        assert csms.of("sim-t-1", "BootNotification")[1].payload["reason"] == "RemoteReset"
    assert csms.invalid == []


async def test_an_unexpected_disconnect_is_counted_and_the_charger_reconnects() -> None:
    async with TinyCsms() as csms, running(csms.url, "1.6") as (_, stats):
        await csms.wait_for(lambda: csms.of("sim-t-1", "StatusNotification"))
        await csms.connections["sim-t-1"].close()
        await csms.wait_for(lambda: len(csms.of("sim-t-1", "BootNotification")) == 2)
    assert stats.disconnects == 1
    assert stats.reconnects == 1


async def test_a_dropped_connection_counts_as_a_storm_disconnect() -> None:
    async with TinyCsms() as csms, running(csms.url, "2.1") as (charger, stats):
        await csms.wait_for(lambda: csms.of("sim-t-1", "StatusNotification"))
        charger.drop()
        await csms.wait_for(lambda: len(csms.of("sim-t-1", "BootNotification")) == 2)
    assert (stats.disconnects, stats.storm_disconnects) == (0, 1)


@pytest.mark.parametrize("version", VERSIONS)
async def test_faults_are_reported_and_clear(version: str) -> None:
    async with TinyCsms() as csms, running(csms.url, version, idle_mean_s=0.0, fault_probability=1.0,
                                           fault_duration_s=0.05):
        await csms.wait_for(lambda: len(csms.of("sim-t-1", "StatusNotification")) >= 3)
    statuses = [r.payload.get("status", r.payload.get("connectorStatus"))
                for r in csms.of("sim-t-1", "StatusNotification")]
    assert statuses[:3] == ["Available", "Faulted", "Available"]
    assert csms.invalid == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_change_availability_and_triggered_meter_values(version: str) -> None:
    async with TinyCsms() as csms, running(csms.url, version):
        await csms.wait_for(lambda: csms.of("sim-t-1", "StatusNotification"))
        if version == "1.6":
            inoperative = {"connectorId": 1, "type": "Inoperative"}
            trigger = {"requestedMessage": "MeterValues", "connectorId": 1}
        else:
            inoperative = {"operationalStatus": "Inoperative", "evse": {"id": 1}}
            trigger = {"requestedMessage": "MeterValues", "evse": {"id": 1}}
        assert await csms.call("sim-t-1", "ChangeAvailability", inoperative) == {"status": "Accepted"}
        await csms.wait_for(lambda: len(csms.of("sim-t-1", "StatusNotification")) == 2)
        assert await csms.call("sim-t-1", "TriggerMessage", trigger) == {"status": "Accepted"}
        meter = await csms.wait_for(lambda: csms.of("sim-t-1", "MeterValues"))
    last = csms.of("sim-t-1", "StatusNotification")[-1].payload
    assert last.get("status", last.get("connectorStatus")) == "Unavailable"
    assert meter[0].payload["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
    assert csms.invalid == []
