"""Dashboard and alarms for the adapter service: what an operator looks at first during an incident."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from adapter.observability import names
from infra.adapter_metrics import adapter_metric, connections_per_process, message_latency_p99, per_dimension
from infra.config import DeployConfig
from infra.service import ServiceStack

WIDTH = 12
HEIGHT = 6
AT_LEAST = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD


class ObservabilityStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, service: ServiceStack,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        key = kms.Key(self, "AlarmTopicKey", enable_key_rotation=True,
                      description="Encrypts the adapter alarm topic")
        # CloudWatch alarms publish to the encrypted topic, so the service must be able to use the key.
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "Alarms", master_key=key, enforce_ssl=True,
                               display_name="OCPP adapter alarms")
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

        messages_in = adapter_metric(config, names.MESSAGES_IN, "Sum", "messages in / min")
        errors = adapter_metric(config, names.ERRORS, "Sum", "errors / min")
        healthy_hosts = service.target_group.metrics.healthy_host_count(period=Duration.minutes(1))

        self._alarm("LatencyHigh", message_latency_p99(config),
                    threshold=2 * config.latency_p99_scale_out_ms, periods=5, breaching=3,
                    description="Charger message to MQTT hand-off p99 is high: broker or store slow, or "
                                "scaling at its maximum.")
        self._alarm("ErrorRate", cw.MathExpression(
            expression="100 * errors / MAX([messages, 1])", label="errors per 100 messages",
            using_metrics={"errors": errors, "messages": messages_in}, period=Duration.minutes(1)),
            threshold=1, periods=5, breaching=5,
            description="More than 1% of charger messages fail (protocol, validation or handler errors).")
        reconnects = adapter_metric(config, names.MQTT_RECONNECTS, "Sum", "MQTT reconnects")
        outbox_writes = adapter_metric(config, names.OUTBOX_WRITES, "Sum", "outbox writes")
        self._alarm("MqttReconnects", reconnects, threshold=1, periods=5, breaching=3,
                    description="The MQTT connection to IoT Core keeps dropping.")
        self._alarm("OutboxWrites", outbox_writes, threshold=1, periods=5, breaching=5,
                    description="Events go to the durable outbox: the broker is not acknowledging publishes "
                                "in time.")
        self._alarm("NoHealthyTargets", healthy_hosts, threshold=1, periods=2, breaching=2,
                    comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                    missing=cw.TreatMissingData.BREACHING,
                    description="No adapter task passes the NLB health check: chargers cannot connect.")

        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{config.prefix}-adapter",
                                 default_interval=Duration.hours(3))
        dashboard.add_widgets(
            _graph("Connected chargers",
                   [adapter_metric(config, names.ACTIVE_CONNECTIONS, "Sum", "all tasks")],
                   right=[connections_per_process(config)]),
            _graph("Messages/s in by action",
                   [per_dimension(config, names.MESSAGES_IN, names.ACTION_DIMENSION, per_second=True)]),
        )
        dashboard.add_widgets(
            _graph("Latency (ms)",
                   [adapter_metric(config, names.MESSAGE_LATENCY_MS, "p50", "message p50"),
                    message_latency_p99(config),
                    adapter_metric(config, names.REQUEST_LATENCY_MS, "p99", "back-end request p99")]),
            _graph("Messages/s out by action",
                   [per_dimension(config, names.MESSAGES_OUT, names.ACTION_DIMENSION, per_second=True)]),
        )
        dashboard.add_widgets(
            _graph("Errors by kind", [per_dimension(config, names.ERRORS, names.KIND_DIMENSION)]),
            _graph("MQTT reconnects and outbox writes", [reconnects, outbox_writes]),
        )
        dashboard.add_widgets(
            _graph("Tasks: CPU and memory (%)",
                   [service.service.metric_cpu_utilization(period=Duration.minutes(1)),
                    service.service.metric_memory_utilization(period=Duration.minutes(1))]),
            _graph("NLB: healthy targets and active flows", [healthy_hosts],
                   right=[service.nlb.metrics.active_flow_count(period=Duration.minutes(1))]),
        )

    def _alarm(self, name: str, metric: cw.IMetric, *, threshold: float, periods: int, breaching: int,
               description: str, comparison: cw.ComparisonOperator = AT_LEAST,
               missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING) -> cw.Alarm:
        alarm = cw.Alarm(self, name, metric=metric, threshold=threshold, evaluation_periods=periods,
                         datapoints_to_alarm=breaching, comparison_operator=comparison,
                         treat_missing_data=missing, alarm_description=description,
                         alarm_name=f"{self.config.prefix}-{name}")
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        alarm.add_ok_action(cw_actions.SnsAction(self.topic))
        return alarm


def _graph(title: str, left: list[cw.IMetric], right: list[cw.IMetric] | None = None) -> cw.GraphWidget:
    return cw.GraphWidget(title=title, left=left, right=right or [], width=WIDTH, height=HEIGHT)
