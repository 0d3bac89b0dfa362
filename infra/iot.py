"""AWS IoT Core: charger thing type and group, the adapter's IoT policy, and rules feeding analytics."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.common import LOG_RETENTION
from infra.config import DeployConfig
from infra.topics import EVENT_RULE_TOPICS, adapter_statements, rule_sql

# Kinesis partition key: per charger, so one charger's events stay ordered within a shard.
PARTITION_KEY = "${charger_id}"


class IotStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, stream: kinesis.IStream,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        iot.CfnThingType(
            self, "ChargerType",
            thing_type_name=f"{config.prefix}Charger",
            thing_type_properties=iot.CfnThingType.ThingTypePropertiesProperty(
                thing_type_description="OCPP charge point connected through the OCPP adapter",
                searchable_attributes=["vendor", "model", "site"]),
        )
        iot.CfnThingGroup(
            self, "Chargers",
            thing_group_name=f"{config.prefix}Chargers",
            thing_group_properties=iot.CfnThingGroup.ThingGroupPropertiesProperty(
                thing_group_description="All chargers served by the OCPP adapter"),
        )
        # For an adapter identity with an X.509 certificate; the ECS task role carries the same statements.
        self.adapter_policy = iot.CfnPolicy(
            self, "AdapterPolicy",
            policy_name=f"{config.prefix}Adapter",
            policy_document=iam.PolicyDocument(statements=adapter_statements(self, config)),
        )

        errors = logs.LogGroup(self, "RuleErrors", retention=LOG_RETENTION,
                               removal_policy=RemovalPolicy.DESTROY)
        role = iam.Role(self, "RuleRole", assumed_by=iam.ServicePrincipal("iot.amazonaws.com"),
                        description="IoT rules: put canonical events on the analytics stream, log failures")
        stream.grant_write(role)
        errors.grant_write(role)
        self.rules = {
            name: iot.CfnTopicRule(
                self, f"Rule-{name}",
                rule_name=f"{config.prefix.lower()}_{name}_to_kinesis",
                topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                    sql=rule_sql(topic_filter),
                    aws_iot_sql_version="2016-03-23",
                    rule_disabled=False,
                    actions=[iot.CfnTopicRule.ActionProperty(kinesis=iot.CfnTopicRule.KinesisActionProperty(
                        stream_name=stream.stream_name, partition_key=PARTITION_KEY,
                        role_arn=role.role_arn))],
                    error_action=iot.CfnTopicRule.ActionProperty(
                        cloudwatch_logs=iot.CfnTopicRule.CloudwatchLogsActionProperty(
                            log_group_name=errors.log_group_name, role_arn=role.role_arn)),
                ),
            )
            for name, topic_filter in EVENT_RULE_TOPICS.items()
        }
