"""The local shadow stand-in at the edges of IoT Core's update rules: ``null`` deletes whole sections, and a
malformed state is rejected with 400 on update/rejected instead of being dropped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapter.bus.client import MqttClient
from adapter.bus.endpoint import parse_endpoint
from adapter.bus.local_shadow import LocalShadowService
from tests.conftest import Broker, MqttProbe

SHADOW = "$aws/things/thing9/shadow"


@pytest.fixture
async def shadow(mosquitto: Broker, probe: MqttProbe) -> AsyncIterator[MqttProbe]:
    client = MqttClient(parse_endpoint(mosquitto.url), "shadow-service")
    await LocalShadowService(client).start()
    client.start()
    await client.wait_connected(10)
    await probe.subscribe(f"{SHADOW}/#")
    yield probe
    await client.stop()


async def update(probe: MqttProbe, body: Any) -> tuple[str, Any]:
    """The request's answer: accepted or rejected."""
    await probe.publish(f"{SHADOW}/update", body)
    answer = await probe.wait_for(lambda t, b: t in (f"{SHADOW}/update/accepted", f"{SHADOW}/update/rejected"))
    probe.messages.remove(answer)
    return answer


async def document(probe: MqttProbe) -> Any:
    await probe.publish(f"{SHADOW}/get", {})
    return await probe.next_on(f"{SHADOW}/get/accepted")


async def test_a_null_section_deletes_it(shadow: MqttProbe) -> None:
    await update(shadow, {"state": {"desired": {"a": 1, "b": {"c": 2}}, "reported": {"a": 1}}})
    topic, accepted = await update(shadow, {"state": {"desired": None}})
    assert topic.endswith("/accepted") and accepted["state"] == {"desired": None} and accepted["version"] == 2
    doc = await document(shadow)
    assert doc["state"] == {"reported": {"a": 1}} and doc["version"] == 2

    await update(shadow, {"state": {"desired": {"a": 2}}})
    await update(shadow, {"state": None})  # the whole state; the shadow itself stays
    doc = await document(shadow)
    assert doc["state"] == {} and doc["version"] == 4


async def test_nulls_inside_a_new_object_are_not_stored(shadow: MqttProbe) -> None:
    await update(shadow, {"state": {"desired": {"n": {"x": None, "y": 1}}}})
    assert (await document(shadow))["state"]["desired"] == {"n": {"y": 1}}


@pytest.mark.parametrize(("body", "message"), [
    ({"state": {"desired": 5}}, "Desired node must be an object"),
    ({"state": {"reported": [1]}}, "Reported node must be an object"),
    ({"state": "on"}, "State node must be an object"),
    ({"version": 1}, "Missing required node: state"),
    ({"state": {"desired": {}, "wanted": {}}}, "State contains an invalid node: 'wanted'"),
])
async def test_a_malformed_state_is_rejected_and_changes_nothing(shadow: MqttProbe, body: Any, message: str) -> None:
    await update(shadow, {"state": {"desired": {"a": 1}}})
    topic, rejected = await update(shadow, {**body, "clientToken": "t1"})
    assert topic.endswith("/rejected") and (rejected["code"], rejected["message"]) == (400, message)
    doc = await document(shadow)
    assert doc["state"]["desired"] == {"a": 1} and doc["version"] == 1


async def test_a_state_over_8_kb_is_rejected_with_413_and_changes_nothing(shadow: MqttProbe) -> None:
    await update(shadow, {"state": {"reported": {"a": "x" * 4000}}})
    topic, rejected = await update(shadow, {"state": {"desired": {"b": "y" * 4200}}, "clientToken": "t2"})
    assert topic.endswith("/rejected") and (rejected["code"], rejected["clientToken"]) == (413, "t2")
    topic, _ = await update(shadow, {"state": {"desired": {"b": "y" * 4000}}})  # just under 8 KB
    assert topic.endswith("/accepted")
    assert (await document(shadow))["version"] == 2
