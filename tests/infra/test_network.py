"""Network stack: a VPC over two availability zones with public and private subnets."""

from __future__ import annotations

import json

import pytest

from tests.infra.synth import synth

pytestmark = pytest.mark.infra


@pytest.mark.parametrize("variant", ["fargate-tls", "ec2-plain"])
def test_vpc_spans_two_availability_zones(variant: str) -> None:
    s = synth(variant)
    network = s.deployment.network
    subnets = s.resources(network, "AWS::EC2::Subnet").values()
    zones = {json.dumps(subnet["Properties"]["AvailabilityZone"]) for subnet in subnets}
    public = [subnet for subnet in subnets if subnet["Properties"]["MapPublicIpOnLaunch"]]
    assert len(zones) == 2
    assert len(public) == 2 and len(subnets) == 4  # one public and one private subnet per zone
    template = s.template(network)
    template.resource_count_is("AWS::EC2::VPC", 1)
    template.resource_count_is("AWS::EC2::NatGateway", s.config.nat_gateways)
    template.resource_count_is("AWS::EC2::FlowLog", 1)


def test_stacks_are_environment_agnostic() -> None:
    """No account or region baked in: one synthesized app deploys anywhere, synthesis needs no credentials."""
    for stack in synth("fargate-tls").deployment.stacks():
        assert stack.resolve(stack.region) == {"Ref": "AWS::Region"}
        assert stack.resolve(stack.account) == {"Ref": "AWS::AccountId"}
