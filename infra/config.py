"""Deployment configuration, read once from CDK context (cdk.json or ``-c key=value``).

Every choice that differs between deployments (compute, TLS, database, MQTT identity mode, sizes) is a
context value here, so stacks never read context themselves and tests build any variant by passing a dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from constructs import Node

PREFIX = "ocpp:"

Compute = Literal["fargate", "ec2"]
Database = Literal["documentdb", "external"]
MqttMode = Literal["per-charger", "shared"]
Registration = Literal["open", "known"]  # the adapter's --registration choices


@dataclass(frozen=True)
class DeployConfig:
    """What to deploy. Defaults are a small production-shaped deployment."""

    prefix: str = "Ocpp"
    compute: Compute = "fargate"
    # ACM certificate ARN for the TLS listener (wss://); empty means a plain TCP listener (ws://).
    certificate_arn: str = ""
    listener_port: int = 0  # 0: 443 with a certificate, 80 without
    database: Database = "documentdb"
    # external: name of a Secrets Manager secret whose SecretString is a full MongoDB URI.
    mongo_uri_secret_name: str = ""
    # per-charger: one MQTT connection per charger, client id = charger id; shared: adapter-* client ids.
    mqtt_mode: MqttMode = "per-charger"
    # Charger ids the per-charger identity may use as MQTT client ids (IoT policy wildcard after it).
    charger_id_prefix: str = ""
    # known: only chargers an operator registered may connect. The adapter's own default (open) would let
    # anyone reaching the internet-facing NLB register an unused id, unauthenticated, and publish as it.
    registration: Registration = "known"
    # AWS IoT data endpoint (aws iot describe-endpoint --endpoint-type iot:Data-ATS); the adapter needs it.
    iot_endpoint: str = ""
    service_name: str = "ocpp-adapter"
    adapter_port: int = 9000
    desired_count: int = 2
    min_tasks: int = 2
    max_tasks: int = 10
    task_cpu: int = 1024
    task_memory_mib: int = 2048
    instance_type: str = "c6i.large"
    # Target for the ActiveConnections tracking policy, per task (each worker process tracks its share).
    connections_per_task: int = 4000
    cpu_target_percent: int = 60
    # MessageLatencyMs p99 above which the step policy adds tasks (doubles the step at 4x).
    latency_p99_scale_out_ms: int = 500
    deregistration_delay_s: int = 30
    stop_timeout_s: int = 120
    nat_gateways: int = 1
    docdb_instances: int = 2
    docdb_instance_type: str = "r6g.large"
    alarm_email: str = ""
    firehose_buffer_s: int = 300
    kinesis_shards: int = 0  # 0: on-demand capacity

    @property
    def tls(self) -> bool:
        return bool(self.certificate_arn)

    @property
    def workers(self) -> int:
        """Adapter processes per task, one per vCPU; each reports its own ActiveConnections gauge."""
        return max(1, self.task_cpu // 1024)

    @property
    def public_port(self) -> int:
        return self.listener_port or (443 if self.tls else 80)

    @classmethod
    def from_context(cls, node: Node) -> DeployConfig:
        """Read ``ocpp:<camelCaseField>`` keys; values given as strings (``-c``) are coerced by type."""
        values: dict[str, Any] = {}
        for name, default in cls.defaults().items():
            raw = node.try_get_context(context_key(name))
            if raw is not None:
                values[name] = type(default)(raw)
        config = cls(**values)
        config.validate()
        return config

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {name: field.default for name, field in cls.__dataclass_fields__.items()}

    def validate(self) -> None:
        choices = {"compute": ("fargate", "ec2"), "database": ("documentdb", "external"),
                   "mqtt_mode": ("per-charger", "shared"), "registration": ("open", "known")}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{context_key(name)} must be one of {allowed}, not {value!r}")
        if self.database == "external" and not self.mongo_uri_secret_name:
            raise ValueError(f"{PREFIX}database=external needs {PREFIX}mongoUriSecretName")
        if not 0 < self.min_tasks <= self.desired_count <= self.max_tasks:
            raise ValueError("need 0 < minTasks <= desiredCount <= maxTasks")
        if self.compute == "fargate" and self.stop_timeout_s > 120:
            raise ValueError("Fargate allows a stop timeout of at most 120 s")


def context_key(field_name: str) -> str:
    """``max_tasks`` -> ``ocpp:maxTasks``."""
    head, *rest = field_name.split("_")
    return PREFIX + head + "".join(part.capitalize() for part in rest)
