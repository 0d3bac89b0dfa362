"""IoT things over a real session (moto's IoT): created at the first connection, typed at the first boot."""

from __future__ import annotations

from typing import Any

import boto3
from moto import mock_aws

from tests.adapter.events import boot_16


def groups_of(iot: Any, thing: str) -> list[str]:
    return [g["groupName"] for g in iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"]]


async def test_the_first_boot_gives_the_thing_its_type_and_group(adapter_factory: Any, connect: Any) -> None:
    """Before, the thing made at the first connection (vendor and model unknown) stayed untyped forever."""
    with mock_aws():
        iot = boto3.client("iot", region_name="eu-west-1")
        adapter = await adapter_factory(iot_provisioning=True, aws_region="eu-west-1")
        cp = await connect("CP-T1")
        assert "thingTypeName" not in iot.describe_thing(thingName="CP-T1")
        await cp.call("BootNotification", boot_16())
        await adapter.drain()
        assert iot.describe_thing(thingName="CP-T1")["thingTypeName"] == "Acme-AC22"
        assert groups_of(iot, "CP-T1") == ["Acme"]
        iot.remove_thing_from_thing_group(thingGroupName="Acme", thingName="CP-T1")
        await cp.call("BootNotification", boot_16())  # the same vendor and model: nothing to do
        await adapter.drain()
        assert groups_of(iot, "CP-T1") == []
        await cp.call("BootNotification", {**boot_16(), "chargePointModel": "DC50"})  # e.g. a swapped unit
        await adapter.drain()
        assert iot.describe_thing(thingName="CP-T1")["thingTypeName"] == "Acme-DC50"
