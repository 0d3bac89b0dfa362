"""IoT stack and the adapter's IoT permissions, checked against the MQTT topic contract (DESIGN.md section 3)."""

from __future__ import annotations

import pytest

from tests.infra.helpers import all_statements, as_list, iot_grants, statements
from tests.infra.synth import synth

pytestmark = pytest.mark.infra

# The contract, spelled out here independently of infra/topics.py.
PUBLISH = {"topic/ocpp/*", "topic//devices/lifecycle/*", "topic/res/v1/*",
           "topic/$aws/things/*/shadow/update", "topic/$aws/things/*/shadow/get"}
INBOUND = {"req/v1/*", "/devices/lifecycle/*", "delegate/v1/*", "$aws/things/*/shadow/update/delta",
           "$aws/things/*/shadow/update/accepted", "$aws/things/*/shadow/update/rejected",
           "$aws/things/*/shadow/update/documents", "$aws/things/*/shadow/get/accepted",
           "$aws/things/*/shadow/get/rejected"}
# per-charger (chargers under a prefix) / shared; the adapter's own connections are adapter-<id>-<role>
CONNECT = {"fargate-tls": {"client/CP-*", "client/adapter-*"}, "ec2-plain": {"client/adapter-*"}}
RULE_SQL = {"SELECT * FROM 'ocpp/+/status'", "SELECT * FROM 'ocpp/+/meter_values'",
            "SELECT * FROM 'ocpp/+/transactions'", "SELECT * FROM 'ocpp/+/events/+'",
            "SELECT * FROM '/devices/lifecycle/+'"}
VARIANTS = ["fargate-tls", "ec2-plain"]


def expected_grants(variant: str) -> dict[str, set[str]]:
    return {
        "iot:Connect": CONNECT[variant],
        "iot:Publish": PUBLISH,
        "iot:RetainPublish": {"topic//devices/lifecycle/*"},
        "iot:Subscribe": {f"topicfilter/{t}" for t in INBOUND} | {"topicfilter/$share/ocpp-adapter/req/v1/*"},
        "iot:Receive": {f"topic/{t}" for t in INBOUND},
    }


def test_thing_type_and_group_for_chargers() -> None:
    template = synth("fargate-tls").template(synth("fargate-tls").deployment.iot)
    template.resource_count_is("AWS::IoT::ThingType", 1)
    template.resource_count_is("AWS::IoT::ThingGroup", 1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_adapter_iot_policy_is_the_topic_contract(variant: str) -> None:
    s = synth(variant)
    (policy,) = s.resources(s.deployment.iot, "AWS::IoT::Policy").values()
    document = list(statements(policy["Properties"]["PolicyDocument"]))
    assert iot_grants(document) == expected_grants(variant)
    assert all(st["Effect"] == "Allow" for st in document)


@pytest.mark.parametrize("variant", VARIANTS)
def test_task_role_has_the_same_iot_grants(variant: str) -> None:
    s = synth(variant)
    task_statements = [st for _, st in all_statements(s, [s.deployment.service])]
    assert iot_grants(task_statements) == expected_grants(variant)


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_iot_action_on_every_resource(variant: str) -> None:
    s = synth(variant)
    for logical_id, st in all_statements(s):
        actions = as_list(st["Action"])
        if any(a.startswith("iot:") for a in actions):
            assert "iot:*" not in actions, logical_id
            assert "*" not in as_list(st["Resource"]), logical_id
            for resource in as_list(st["Resource"]):  # this account and region only
                assert {"Ref": "AWS::AccountId"} in resource["Fn::Join"][1], logical_id


@pytest.mark.parametrize("variant", VARIANTS)
def test_rules_send_canonical_and_lifecycle_events_to_kinesis(variant: str) -> None:
    s = synth(variant)
    rules = [r["Properties"]["TopicRulePayload"]
             for r in s.resources(s.deployment.iot, "AWS::IoT::TopicRule").values()]
    assert {rule["Sql"] for rule in rules} == RULE_SQL
    for rule in rules:
        assert rule["AwsIotSqlVersion"] == "2016-03-23" and rule["RuleDisabled"] is False
        (action,) = rule["Actions"]
        assert action["Kinesis"]["PartitionKey"] == "${charger_id}"
        assert "Fn::GetStackOutput" in action["Kinesis"]["StreamName"]  # the analytics stack's stream
        assert set(rule["ErrorAction"]) == {"CloudwatchLogs"}


def test_rule_role_may_only_write_the_stream_and_error_log() -> None:
    s = synth("fargate-tls")
    actions = {a for _, st in all_statements(s, [s.deployment.iot]) if "Principal" not in st
               for a in as_list(st["Action"])}
    actions -= {a for a in actions if a.startswith("iot:")}  # the adapter policy document
    assert actions == {"kinesis:ListShards", "kinesis:PutRecord", "kinesis:PutRecords",
                       "logs:CreateLogStream", "logs:PutLogEvents"}
