"""Service stack: ECS compute per context, NLB listener (TLS or TCP), container limits, autoscaling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk.assertions import Match

from adapter.config import env_name
from adapter.observability import names
from infra.common import REPO_ROOT
from tests.infra.helpers import all_statements, as_list, container, environment
from tests.infra.synth import CERTIFICATE_ARN, synth

pytestmark = pytest.mark.infra
VARIANTS = ["fargate-tls", "ec2-plain"]


def test_tls_listener_terminates_wss_with_the_context_certificate() -> None:
    s = synth("fargate-tls")
    s.template(s.deployment.service).has_resource_properties("AWS::ElasticLoadBalancingV2::Listener", {
        "Protocol": "TLS",
        "Port": 443,
        "Certificates": [{"CertificateArn": CERTIFICATE_ARN}],
        "SslPolicy": Match.string_like_regexp("^ELBSecurityPolicy-TLS13"),
    })


def test_plain_listener_without_certificate() -> None:
    s = synth("ec2-plain")
    (listener,) = s.resources(s.deployment.service, "AWS::ElasticLoadBalancingV2::Listener").values()
    assert listener["Properties"]["Protocol"] == "TCP" and listener["Properties"]["Port"] == 80
    assert "Certificates" not in listener["Properties"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_internet_facing_nlb_with_access_logs(variant: str) -> None:
    s = synth(variant)
    s.template(s.deployment.service).has_resource_properties("AWS::ElasticLoadBalancingV2::LoadBalancer", {
        "Type": "network",
        "Scheme": "internet-facing",
        "LoadBalancerAttributes": Match.array_with([{"Key": "access_logs.s3.enabled", "Value": "true"}]),
    })


@pytest.mark.parametrize("variant", VARIANTS)
def test_target_group_health_check_and_deregistration_delay(variant: str) -> None:
    s = synth(variant)
    s.template(s.deployment.service).has_resource_properties("AWS::ElasticLoadBalancingV2::TargetGroup", {
        "Protocol": "TCP",
        "Port": 9000,
        "TargetType": "ip",
        "HealthCheckProtocol": "HTTP",
        "HealthCheckPath": "/healthz",
        "HealthCheckPort": "9000",
        "TargetGroupAttributes": Match.array_with([{"Key": "deregistration_delay.timeout_seconds",
                                                    "Value": str(s.config.deregistration_delay_s)}]),
    })


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_nlb_names_each_charger_in_a_proxy_header_the_adapter_reads(variant: str) -> None:
    """IP targets see an NLB node as every charger's address: throttling per address and lifecycle events
    need the charger's own, and the NLB and the adapter must agree on the header or every connection fails."""
    s = synth(variant)
    (group,) = s.resources(s.deployment.service, "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    attributes = {a["Key"]: a["Value"] for a in group["Properties"]["TargetGroupAttributes"]}
    assert attributes["proxy_protocol_v2.enabled"] == "true"
    assert environment(s)[env_name("proxy_protocol")] == "true"


@pytest.mark.parametrize("variant", VARIANTS)
def test_container_limits_for_many_sockets_and_a_graceful_drain(variant: str) -> None:
    s = synth(variant)
    definition = container(s)
    assert definition["Ulimits"] == [{"Name": "nofile", "SoftLimit": 200000, "HardLimit": 200000}]
    assert definition["StopTimeout"] == 120
    assert definition["LinuxParameters"]["InitProcessEnabled"] is True
    assert definition["PortMappings"] == [{"ContainerPort": 9000, "Protocol": "tcp"}]
    assert definition["LogConfiguration"]["Options"]["mode"] == "non-blocking"


@pytest.mark.parametrize("variant", VARIANTS)
def test_adapter_settings_in_the_environment(variant: str) -> None:
    s = synth(variant)
    env = environment(s)
    assert env["PORT"] == "9000"
    assert env["MQTT_MODE"] == s.config.mqtt_mode
    assert env["EMF_METRICS"] == "true"
    assert env[names.DIMENSIONS_ENV] == f"{names.SERVICE_DIMENSION}={s.config.service_name}"
    mqtt_url = json.dumps(env["MQTT_URL"])
    assert "wss-sigv4://" in mqtt_url and "IotEndpoint" in mqtt_url and "?region=" in mqtt_url
    assert ("FRONT_TLS_PROFILE" in env) is s.config.tls


def test_registration_is_known_unless_the_context_chooses_another_policy() -> None:
    """The NLB is internet-facing: under the adapter's own default (open) anyone could claim unused ids."""
    default, chosen = synth("fargate-tls"), synth("ec2-plain")
    assert environment(default)[env_name("registration")] == "known"
    assert environment(chosen)[env_name("registration")] == "open"


def test_image_is_built_from_the_repo_dockerfile() -> None:
    s = synth("fargate-tls")
    outdir = Path(s.app.outdir)
    assets = json.loads((outdir / f"{s.deployment.service.artifact_id}.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    context = outdir / image["source"]["directory"]
    assert (context / "Dockerfile").read_text() == (REPO_ROOT / "Dockerfile").read_text()
    assert (context / "adapter" / "observability" / "names.py").is_file()
    assert not (context / "tests").exists() and not (context / ".venv").exists()  # .dockerignore applied
    assert image["source"]["platform"] == "linux/amd64"


def test_fargate_compute() -> None:
    s = synth("fargate-tls")
    template = s.template(s.deployment.service)
    template.has_resource_properties("AWS::ECS::TaskDefinition", {"RequiresCompatibilities": ["FARGATE"],
                                                                  "NetworkMode": "awsvpc"})
    template.has_resource_properties("AWS::ECS::Service", {"LaunchType": "FARGATE",
                                                           "ServiceName": s.config.service_name})
    template.resource_count_is("AWS::AutoScaling::AutoScalingGroup", 0)


def test_ec2_compute_through_a_capacity_provider() -> None:
    s = synth("ec2-plain")
    template = s.template(s.deployment.service)
    template.resource_count_is("AWS::AutoScaling::AutoScalingGroup", 1)
    template.resource_count_is("AWS::ECS::CapacityProvider", 1)
    template.has_resource_properties("AWS::ECS::TaskDefinition", {"RequiresCompatibilities": ["EC2"],
                                                                  "NetworkMode": "awsvpc"})
    template.has_resource_properties("AWS::ECS::Service", {
        "CapacityProviderStrategy": [Match.object_like({"Weight": 1})]})


@pytest.mark.parametrize("variant", VARIANTS)
def test_scaling_on_cpu_connections_and_latency(variant: str) -> None:
    s = synth(variant)
    policies = [p["Properties"] for p in
                s.resources(s.deployment.service, "AWS::ApplicationAutoScaling::ScalingPolicy").values()]
    tracking = [p["TargetTrackingScalingPolicyConfiguration"] for p in policies
                if p["PolicyType"] == "TargetTrackingScaling"]
    assert {"PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
            "TargetValue": s.config.cpu_target_percent} in [
        {k: v for k, v in t.items() if k in ("PredefinedMetricSpecification", "TargetValue")} for t in tracking]
    (connections,) = [t for t in tracking if "CustomizedMetricSpecification" in t]
    # Per worker process: the ec2 variant's tasks run two, whose gauges average to half a task's load.
    assert connections["TargetValue"] == s.config.connections_per_task / s.config.workers
    assert s.config.workers == {"fargate-tls": 1, "ec2-plain": 2}[variant]
    assert connections["CustomizedMetricSpecification"] == {
        "Namespace": names.NAMESPACE, "MetricName": names.ACTIVE_CONNECTIONS, "Statistic": "Average",
        "Dimensions": [{"Name": names.SERVICE_DIMENSION, "Value": s.config.service_name}]}

    (step,) = [p for p in policies if p["PolicyType"] == "StepScaling"]
    adjustments = step["StepScalingPolicyConfiguration"]["StepAdjustments"]
    assert all(a["ScalingAdjustment"] > 0 for a in adjustments)  # latency only ever adds tasks
    (alarm,) = s.resources(s.deployment.service, "AWS::CloudWatch::Alarm").values()
    (query,) = alarm["Properties"]["Metrics"]
    assert query["MetricStat"]["Stat"] == "p99"
    assert query["MetricStat"]["Metric"]["MetricName"] == names.MESSAGE_LATENCY_MS
    assert alarm["Properties"]["Threshold"] == s.config.latency_p99_scale_out_ms
    s.template(s.deployment.service).has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {"MinCapacity": s.config.min_tasks, "MaxCapacity": s.config.max_tasks})


@pytest.mark.parametrize("variant", VARIANTS)
def test_task_role_least_privilege(variant: str) -> None:
    s = synth(variant)
    task_role = [st for logical_id, st in all_statements(s, [s.deployment.service])
                 if logical_id.startswith("TaskRole")]
    actions = {a for st in task_role for a in as_list(st["Action"])}
    assert {a for a in actions if not a.startswith("iot:")} == {
        "cloudwatch:PutMetricData", "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    (metrics,) = [st for st in task_role if st["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": names.NAMESPACE}}
    for st in task_role:
        if "secretsmanager:GetSecretValue" in as_list(st["Action"]):
            assert st["Resource"] != "*"
