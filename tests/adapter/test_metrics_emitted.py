"""The adapter emits every metric the CDK dashboard, alarms and scaling reference (they use only
names.METRIC_NAMES: tests/observability/test_names_in_infra.py)."""

from __future__ import annotations

from typing import Any

from adapter.observability import names
from adapter.observability.metrics import METRICS
from tests.adapter.events import T0, boot_16
from tests.conftest import Broker, MqttProbe


async def test_every_metric_name_is_emitted(adapter_factory: Any, probe: MqttProbe, mosquitto: Broker,
                                            connect: Any) -> None:
    adapter = await adapter_factory(puback_timeout=0.3)
    await probe.subscribe("res/v1/#")
    cp = await connect("cpM")
    await cp.call("BootNotification", boot_16())
    await cp.send_raw("not json", "-1")
    await adapter.ctx.sessions["cpM"].link.client.wait_connected(10)
    await probe.publish("req/v1/cpM/DEFAULT/m1/ClearCache", {})
    frame = await cp.next_call()
    await cp.answer(frame, {"status": "Accepted"})
    await probe.next_on("res/v1/cpM/DEFAULT/m1/ClearCache")
    mosquitto.stop()
    await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": T0})
    mosquitto.restart()
    await adapter.ctx.bus.control.wait_connected(15)
    emitted = METRICS.emitted_names()
    missing = names.METRIC_NAMES - emitted
    assert not missing, missing
    prometheus = METRICS.render_prometheus()
    assert "ocpp_adapter_active_connections" in prometheus and "ocpp_adapter_messages_in" in prometheus
