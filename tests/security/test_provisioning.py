"""JIT IoT thing provisioning against moto's IoT, idempotent from any starting point."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from adapter.security.provisioning import ThingProvisioner, thing_group_name, thing_type_name


@pytest.fixture
def iot():
    with mock_aws():
        yield boto3.client("iot", region_name="eu-west-1")


def groups_of(iot, thing: str) -> list[str]:
    return [g["groupName"] for g in iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"]]


def test_provisioning_creates_thing_type_and_group_and_is_idempotent(iot):
    provisioner = ThingProvisioner(iot)
    arn = provisioner.provision("CP-1", "ACME Corp", "Fast 50/2")
    assert provisioner.provision("CP-1", "ACME Corp", "Fast 50/2") == arn
    provisioner.provision("CP-2", "ACME Corp", "Fast 50/2")  # type and group exist already
    thing = iot.describe_thing(thingName="CP-1")
    assert thing["thingArn"] == arn and thing["thingTypeName"] == "ACME_Corp-Fast_50_2"
    assert groups_of(iot, "CP-1") == groups_of(iot, "CP-2") == ["ACME_Corp"]


def test_thing_created_before_boot_gets_its_type_later(iot):
    provisioner = ThingProvisioner(iot)
    provisioner.provision("CP-1")
    assert "thingTypeName" not in iot.describe_thing(thingName="CP-1")
    provisioner.provision("CP-1", "ACME", "Fast50")
    assert iot.describe_thing(thingName="CP-1")["thingTypeName"] == "ACME-Fast50"
    assert groups_of(iot, "CP-1") == ["ACME"]


def test_existing_thing_with_other_properties_is_updated_not_an_error():
    # moto accepts a second create_thing silently; AWS answers ResourceAlreadyExists, so stub that reply.
    client = boto3.client("iot", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    arn = "arn:aws:iot:eu-west-1:123456789012:thing/CP-1"
    with Stubber(client) as stub:
        stub.add_response("create_thing_type", {}, {"thingTypeName": "ACME-Fast50"})
        stub.add_client_error("create_thing_group", "ResourceAlreadyExistsException")
        stub.add_client_error("create_thing", "ResourceAlreadyExistsException")
        stub.add_response("update_thing", {}, {"thingName": "CP-1", "thingTypeName": "ACME-Fast50"})
        stub.add_response("describe_thing", {"thingArn": arn}, {"thingName": "CP-1"})
        stub.add_response("add_thing_to_thing_group", {}, {"thingGroupName": "ACME", "thingName": "CP-1"})
        assert ThingProvisioner(client).provision("CP-1", "ACME", "Fast50") == arn
        stub.assert_no_pending_responses()


async def test_ensure_runs_once_per_identity_and_never_raises(iot, caplog):
    calls = []

    class Counting:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(iot, name)

    provisioner = ThingProvisioner(Counting())
    assert await provisioner.ensure("CP-1", "ACME", "Fast50")
    made = len(calls)
    assert await provisioner.ensure("CP-1", "ACME", "Fast50")
    assert len(calls) == made
    assert not await provisioner.ensure("site.cp-1")  # '.' is not allowed in thing names
    assert "IoT provisioning failed for site.cp-1" in caplog.text


def test_names_are_sanitised_and_need_vendor_and_model():
    assert thing_type_name("ACME", None) is None and thing_group_name(None) is None
    assert thing_type_name("Ä#1", "x" * 200) == ("_1-" + "x" * 200)[:128]  # runs of unsafe chars -> one "_"


def test_create_uses_adaptive_retries(iot):
    client = ThingProvisioner.create("eu-west-1")._iot
    assert client.meta.config.retries["mode"] == "adaptive"
