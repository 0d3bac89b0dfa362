"""Simulated chargers driven through the adapter's MQTT API, as a back end would drive real ones."""

from __future__ import annotations

import random
from typing import Any

import pytest

from simulator.backend import Backend
from simulator.requests import limit_profile, requests_for
from tests.conftest import Broker, MqttProbe
from tests.simulator.helpers import VERSIONS, running
from tests.simulator.schemas import validate


def url_of(adapter: Any) -> str:
    return f"ws://127.0.0.1:{adapter.port}/ocpp"


def current(body: Any) -> float | None:
    for sample in body.get("data", {}).get("samples", []):
        if sample["measurand"] == "Current.Import":
            return float(sample["value"])
    return None


@pytest.mark.parametrize("version", VERSIONS)
async def test_every_backend_request_gets_the_chargers_valid_answer(adapter_factory: Any, mosquitto: Broker,
                                                                   probe: MqttProbe, version: str) -> None:
    adapter = await adapter_factory(mqtt_mode="shared")
    charger_id = f"sim-api-{version}"
    await probe.subscribe(f"ocpp/{charger_id}/status")
    backend = Backend()
    await backend.start(mosquitto.url)
    try:
        async with running(url_of(adapter), version, charger_id=charger_id, connectors=2) as (_, stats):
            await probe.next_on(f"ocpp/{charger_id}/status")
            for action, payload in requests_for(version, 2, random.Random(3)):
                response = await backend.request(charger_id, action, payload)
                assert response["status"] == "ok", (action, response)
                validate(version, action, response["payload"], response=True)
    finally:
        await backend.close()
    assert sum(stats.requests_answered.values()) == len(requests_for(version, 2, random.Random(3)))


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_profile_sent_through_mqtt_shows_in_the_published_meter_values(
        adapter_factory: Any, probe: MqttProbe, version: str) -> None:
    adapter = await adapter_factory(mqtt_mode="shared")
    cp = f"sim-profile-{version.replace('.', '')}"
    await probe.subscribe(f"ocpp/{cp}/meter_values", f"res/v1/{cp}/#")
    async with running(url_of(adapter), version, charger_id=cp, idle_mean_s=0.0):
        await probe.wait_for(lambda topic, body: topic.endswith("meter_values") and current(body) == 32.0)

        await probe.publish(f"req/v1/{cp}/DEFAULT/limit/SetChargingProfile", limit_profile(version, 10.0))
        response = await probe.next_on(f"res/v1/{cp}/DEFAULT/limit/SetChargingProfile")
        assert (response["status"], response["payload"]) == ("ok", {"status": "Accepted"})
        _, limited = await probe.wait_for(lambda topic, body: topic.endswith("meter_values")
                                          and current(body) == 10.0)
        power = [s["value"] for s in limited["data"]["samples"] if s["measurand"] == "Power.Active.Import"]
        assert power == [10.0 * 230 * 3]

        clear = {"id": 100} if version == "1.6" else {"chargingProfileId": 100}
        await probe.publish(f"req/v1/{cp}/DEFAULT/clear/ClearChargingProfile", clear)
        response = await probe.next_on(f"res/v1/{cp}/DEFAULT/clear/ClearChargingProfile")
        assert (response["status"], response["payload"]) == ("ok", {"status": "Accepted"})
        mark = len(probe.messages)
        await probe.wait_for(lambda topic, body: topic.endswith("meter_values") and current(body) == 32.0
                             and probe.messages.index((topic, body)) >= mark)
