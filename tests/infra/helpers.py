"""Reading synthesized CloudFormation: IAM statements and joined ARNs, without resolving anything."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aws_cdk import Stack

from tests.infra.synth import Synth


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def arn_tail(resource: Any) -> str:
    """The literal end of an ARN built with Fn::Join ("...:topic/ocpp/*" -> "topic/ocpp/*"); "*" stays "*"."""
    if isinstance(resource, str):
        return resource
    parts = resource["Fn::Join"][1]
    return str(parts[-1]).split(":")[-1]


def statements(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from document.get("Statement", [])


def all_statements(s: Synth, stacks: list[Stack] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(logical id, statement) of every IAM/IoT policy document in the given (default: all) stacks."""
    for stack in stacks or s.deployment.stacks():
        for logical_id, resource in s.json(stack)["Resources"].items():
            props = resource.get("Properties", {})
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IoT::Policy"):
                yield from ((logical_id, st) for st in statements(props["PolicyDocument"]))
            elif resource["Type"] == "AWS::IAM::Role":
                for policy in props.get("Policies", []):
                    yield from ((logical_id, st) for st in statements(policy["PolicyDocument"]))


def iot_grants(document_statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """IoT action -> the resource tails it is granted on."""
    grants: dict[str, set[str]] = {}
    for st in document_statements:
        for action in as_list(st["Action"]):
            if action.startswith("iot:"):
                grants.setdefault(action, set()).update(arn_tail(r) for r in as_list(st["Resource"]))
    return grants


def container(s: Synth) -> dict[str, Any]:
    (task,) = s.resources(s.deployment.service, "AWS::ECS::TaskDefinition").values()
    (definition,) = task["Properties"]["ContainerDefinitions"]
    return dict(definition)


def environment(s: Synth) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in container(s).get("Environment", [])}
