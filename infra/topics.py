"""The MQTT topic contract of DESIGN.md section 3, as IoT policy / IAM statements and rule topic filters.

One definition serves the IoT Core policy (adapter identity with an X.509 certificate) and the ECS task
role (SigV4 over WebSockets): IoT Core evaluates both with the same actions and resource ARNs, so the two
identities can never drift apart. Resources are ARN patterns within this account and region only.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import DeployConfig

SHADOW = "$aws/things/*/shadow"
# Topics the adapter publishes to.
PUBLISH_TOPICS = (
    "ocpp/*",                   # ocpp/{cp}/status|meter_values|transactions|events/{Action}
    "/devices/lifecycle/*",     # connected / disconnected
    "res/v1/*",                 # responses to back-end requests
    f"{SHADOW}/update",         # reported state
    f"{SHADOW}/get",            # read desired state after (re)connect
)
# Topic filters the adapter subscribes to, and the topics it then receives on.
SUBSCRIBE_TOPICS = (
    "req/v1/*",                 # req/v1/{cp}/{namespace}/{request_id}/{operation}
    f"{SHADOW}/update/delta",
    f"{SHADOW}/update/accepted",
    f"{SHADOW}/update/rejected",
    f"{SHADOW}/update/documents",
    f"{SHADOW}/get/accepted",
    f"{SHADOW}/get/rejected",
    "/devices/lifecycle/*",     # another instance took over a charger; instances' liveness
    "delegate/v1/*",            # back-end replies to delegated Authorize / DataTransfer
)
# Subscribed only (messages arrive on the req/v1 topics above): requests for chargers no instance holds.
SHARED_SUBSCRIBE_FILTERS = ("$share/ocpp-adapter/req/v1/*",)
# Published retained: a charger's last lifecycle event, an instance's status and its Will.
RETAINED_TOPICS = ("/devices/lifecycle/*",)
# Topic rules forwarding to the analytics stream: rule name suffix -> topic filter of the canonical events.
EVENT_RULE_TOPICS = {
    "status": "ocpp/+/status",
    "meter_values": "ocpp/+/meter_values",
    "transactions": "ocpp/+/transactions",
    "events": "ocpp/+/events/+",
    "lifecycle": "/devices/lifecycle/+",
}
ADAPTER_CLIENT_ID = "adapter-*"  # the adapter's own connections: control, and the shared pool


def client_id_patterns(config: DeployConfig) -> tuple[str, ...]:
    """per-charger: one MQTT connection per charger, client id = charger id; always the adapter's own ids."""
    if config.mqtt_mode != "per-charger":
        return (ADAPTER_CLIENT_ID,)
    return ("*",) if not config.charger_id_prefix else (f"{config.charger_id_prefix}*", ADAPTER_CLIENT_ID)


def iot_arn(scope: Construct, resource: str, name: str) -> str:
    return Stack.of(scope).format_arn(service="iot", resource=resource, resource_name=name,
                                      arn_format=ArnFormat.SLASH_RESOURCE_NAME)


def _grants(config: DeployConfig) -> list[tuple[str, str, tuple[str, ...]]]:
    """(IoT action, ARN resource type, resource names) of the adapter identity."""
    return [
        ("Connect", "client", client_id_patterns(config)),
        ("Publish", "topic", PUBLISH_TOPICS),
        ("RetainPublish", "topic", RETAINED_TOPICS),
        ("Subscribe", "topicfilter", SUBSCRIBE_TOPICS + SHARED_SUBSCRIBE_FILTERS),
        ("Receive", "topic", SUBSCRIBE_TOPICS),
    ]


def adapter_statements(scope: Construct, config: DeployConfig) -> list[iam.PolicyStatement]:
    """Least-privilege IoT data-plane permissions for the adapter's identity."""
    return [iam.PolicyStatement(sid=action, actions=[f"iot:{action}"],
                                resources=[iot_arn(scope, kind, name) for name in resource_names])
            for action, kind, resource_names in _grants(config)]


def wildcard_findings(config: DeployConfig) -> list[str]:
    """The cdk-nag IAM5 finding ids of the wildcard ARNs above, for an IAM role carrying the statements."""
    arn = "arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>"
    return [f"AwsSolutions-IAM5[Resource::{arn}:{kind}/{name}]"
            for _, kind, resource_names in _grants(config) for name in resource_names if "*" in name]


def rule_sql(topic_filter: str) -> str:
    """Forward the canonical event unchanged: the stream and the Glue tables carry the same JSON."""
    return f"SELECT * FROM '{topic_filter}'"  # noqa: S608 - IoT rule SQL from constants, no user input
