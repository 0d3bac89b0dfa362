"""The CDK dashboard, alarms and scaling policies use only metric names defined in names.py.

The adapter emits exactly those names (one module for both), so a renamed or misspelled metric in the
infrastructure would graph nothing and never alarm; this test makes that a failure instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from adapter.observability import names
from tests.infra.synth import VARIANTS, Synth, synth

pytestmark = pytest.mark.infra
SEARCH = re.compile(r"\{(?P<namespace>[^,}]+)[^}]*\}[^']*MetricName=\\?\"(?P<name>\w+)\\?\"")


def joined(value: Any) -> str:
    """A CloudFormation string, tokens replaced by a placeholder (the dashboard body is an Fn::Join)."""
    if isinstance(value, str):
        return value
    return "".join(part if isinstance(part, str) else "TOKEN" for part in value["Fn::Join"][1])


def dashboard_metrics(body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for widget in body["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            if isinstance(metric[0], dict):  # [{"expression": "SEARCH(...)"}]
                for match in SEARCH.finditer(metric[0]["expression"]):
                    yield match["namespace"], match["name"]
            else:  # [namespace, name, dimension, value, ..., {options}]
                yield metric[0], metric[1]


def alarm_metrics(props: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if "MetricName" in props:
        yield props["Namespace"], props["MetricName"]
    for query in props.get("Metrics", []):
        if "MetricStat" in query:
            yield query["MetricStat"]["Metric"]["Namespace"], query["MetricStat"]["Metric"]["MetricName"]
        for match in SEARCH.finditer(query.get("Expression", "")):
            yield match["namespace"], match["name"]


def referenced_metrics(s: Synth) -> dict[str, set[tuple[str, str]]]:
    """Where -> (namespace, metric name) pairs, over every stack of the app."""
    found: dict[str, set[tuple[str, str]]] = {"dashboard": set(), "alarms": set(), "scaling": set()}
    for stack in s.deployment.stacks():
        for resource in s.json(stack)["Resources"].values():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::CloudWatch::Dashboard":
                found["dashboard"].update(dashboard_metrics(json.loads(joined(props["DashboardBody"]))))
            elif resource["Type"] == "AWS::CloudWatch::Alarm":
                found["alarms"].update(alarm_metrics(props))
            elif resource["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy":
                custom = props.get("TargetTrackingScalingPolicyConfiguration", {}).get(
                    "CustomizedMetricSpecification")
                if custom:
                    found["scaling"].add((custom["Namespace"], custom["MetricName"]))
    return found


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_infra_references_only_names_from_names_py(variant: str) -> None:
    found = referenced_metrics(synth(variant))
    for where, metrics in found.items():
        custom = {(ns, name) for ns, name in metrics if not ns.startswith("AWS/")}
        assert custom, where  # the check is not vacuous
        assert {ns for ns, _ in custom} == {names.NAMESPACE}, where
        assert {name for _, name in custom} <= names.METRIC_NAMES, where
    dashboard = {name for _, name in found["dashboard"]}
    # The dashboard the issue asks for: connections, messages by action, latency, errors, MQTT reconnects.
    assert {names.ACTIVE_CONNECTIONS, names.MESSAGES_IN, names.MESSAGE_LATENCY_MS, names.ERRORS,
            names.MQTT_RECONNECTS} <= dashboard
    assert {names.ACTIVE_CONNECTIONS} == {name for _, name in found["scaling"]}
    assert names.MESSAGE_LATENCY_MS in {name for _, name in found["alarms"]}  # latency step scaling


def test_names_are_unique_and_valid() -> None:
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", name) for name in names.METRIC_NAMES)
