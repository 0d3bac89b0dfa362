"""The adapter service: ECS (Fargate or EC2 capacity provider) behind a Network Load Balancer.

Shaped by what the adapter is: long-lived WebSockets, so an NLB (layer 4, no idle HTTP timeouts) with
TLS terminated there or plain TCP; a large file-descriptor limit (one socket per charger plus one MQTT
connection per charger in per-charger mode); a 120 s stop timeout so SIGTERM can drain sessions gradually
instead of dropping thousands of chargers into a reconnect storm; scaling on connections, CPU and latency.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnParameter, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from adapter.config import env_name
from adapter.observability import names
from infra.adapter_metrics import connections_per_process, message_latency_p99
from infra.common import LOG_RETENTION, REPO_ROOT, acknowledge, private_bucket
from infra.config import DeployConfig
from infra.data import MongoAccess, external_mongo
from infra.topics import adapter_statements, wildcard_findings

CONTAINER = "adapter"
PRIVATE = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
NOFILE = 200_000
IOT_ENDPOINT_PATTERN = r"^[a-z0-9]+(-ats)?\.iot\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$"


class ServiceStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, vpc: ec2.IVpc,
                 mongo: MongoAccess | None, **kwargs: Any) -> None:
        """``mongo`` is the DocumentDB stack's access; None means the external MongoDB URI secret."""
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        mongo = mongo or external_mongo(self, config)
        self.cluster = ecs.Cluster(self, "Cluster", vpc=vpc,
                                   container_insights_v2=ecs.ContainerInsights.ENABLED)
        task_role = self._task_role(mongo)
        if config.compute == "fargate":
            task_definition: ecs.TaskDefinition = ecs.FargateTaskDefinition(
                self, "Task", cpu=config.task_cpu, memory_limit_mib=config.task_memory_mib,
                task_role=task_role,
                runtime_platform=ecs.RuntimePlatform(cpu_architecture=ecs.CpuArchitecture.X86_64,
                                                     operating_system_family=ecs.OperatingSystemFamily.LINUX))
        else:
            task_definition = ecs.Ec2TaskDefinition(self, "Task", network_mode=ecs.NetworkMode.AWS_VPC,
                                                    task_role=task_role)
        self._add_container(task_definition, mongo)
        acknowledge(task_definition, "AwsSolutions-IAM5[Resource::*]",
                    "Execution role: ecr:GetAuthorizationToken (image pull) has no resource-level "
                    "permissions; everything else it gets is scoped to this task's log group and secrets.")
        acknowledge(task_definition, "AwsSolutions-ECS2",
                    "Environment variables hold only non-secret settings (ports, endpoint, modes); database "
                    "credentials are injected from Secrets Manager.")

        task_security_group = ec2.SecurityGroup(self, "Tasks", vpc=vpc, allow_all_outbound=True,
                                                description="Adapter tasks")
        security_groups: list[ec2.ISecurityGroup] = [task_security_group]
        if mongo.client_security_group is not None:
            security_groups.append(mongo.client_security_group)
        self.service = self._service(task_definition, security_groups)

        self._load_balancer(vpc, task_security_group)
        self._autoscaling()
        scheme, default_port = ("wss", 443) if config.tls else ("ws", 80)
        port = "" if config.public_port == default_port else f":{config.public_port}"
        CfnOutput(self, "ChargerUrl",
                  value=f"{scheme}://{self.nlb.load_balancer_dns_name}{port}/ocpp/<charge-point-id>",
                  description="Where chargers connect (with TLS, use a DNS name that matches the certificate)")

    def _task_role(self, mongo: MongoAccess) -> iam.Role:
        """IoT data plane on the topic contract only, the database secret, and our metrics namespace."""
        role = iam.Role(self, "TaskRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                        description="OCPP adapter: MQTT over SigV4, database secret, adapter metrics")
        for statement in adapter_statements(self, self.config):
            role.add_to_policy(statement)
        for finding in wildcard_findings(self.config):
            acknowledge(role, finding,
                        "MQTT topics are per charger (ocpp/{cp}/..., $aws/things/{cp}/shadow/...) and "
                        "chargers are unknown at deploy time; each wildcard stays inside one topic family.")
        role.add_to_policy(iam.PolicyStatement(
            sid="AdapterMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": names.NAMESPACE}}))
        for secret in mongo.readable:
            secret.grant_read(role)
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
                    "cloudwatch:PutMetricData has no resource-level permissions; the statement is limited to "
                    f"the {names.NAMESPACE} namespace by the cloudwatch:namespace condition.")
        return role

    def _add_container(self, task_definition: ecs.TaskDefinition, mongo: MongoAccess) -> None:
        config = self.config
        endpoint = CfnParameter(
            self, "IotEndpoint", type="String", allowed_pattern=IOT_ENDPOINT_PATTERN,
            description="AWS IoT data endpoint: aws iot describe-endpoint --endpoint-type iot:Data-ATS",
            default=config.iot_endpoint or None)
        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        task_definition.add_container(
            CONTAINER,
            image=ecs.ContainerImage.from_asset(str(REPO_ROOT), platform=ecr_assets.Platform.LINUX_AMD64),
            essential=True,
            cpu=config.task_cpu if config.compute == "ec2" else None,
            memory_limit_mib=config.task_memory_mib if config.compute == "ec2" else None,
            port_mappings=[ecs.PortMapping(container_port=config.adapter_port, protocol=ecs.Protocol.TCP)],
            ulimits=[ecs.Ulimit(name=ecs.UlimitName.NOFILE, soft_limit=NOFILE, hard_limit=NOFILE)],
            stop_timeout=Duration.seconds(config.stop_timeout_s),
            # An init process forwards SIGTERM to the adapter (PID 1 would otherwise ignore it) and reaps.
            linux_parameters=ecs.LinuxParameters(self, "Linux", init_process_enabled=True),
            # Settings of `python -m adapter serve` (adapter/config.py: env name = setting name upper-cased).
            environment={
                "AWS_REGION": self.region,
                "PORT": str(config.adapter_port),
                "WORKERS": str(config.workers),
                "MQTT_URL": f"wss-sigv4://{endpoint.value_as_string}?region={self.region}",
                "MQTT_MODE": config.mqtt_mode,
                env_name("registration"): config.registration,
                "EMF_METRICS": "true",
                **({"FRONT_TLS_PROFILE": "2"} if config.tls else {}),  # the NLB terminates TLS
                # The target group's PROXY protocol v2 header (see _load_balancer) names each charger's address.
                env_name("proxy_protocol"): "true",
                names.DIMENSIONS_ENV: f"{names.SERVICE_DIMENSION}={config.service_name}",
                **mongo.environment,
            },
            secrets=mongo.secrets,
            # Non-blocking: a slow CloudWatch Logs must never stall the event loop writing to stdout.
            logging=ecs.LogDrivers.aws_logs(stream_prefix=CONTAINER, log_group=log_group,
                                            mode=ecs.AwsLogDriverMode.NON_BLOCKING,
                                            max_buffer_size=Size.mebibytes(25)),
        )

    def _service(self, task_definition: ecs.TaskDefinition,
                 security_groups: list[ec2.ISecurityGroup]) -> ecs.BaseService:
        config = self.config
        common: dict[str, Any] = {
            "cluster": self.cluster,
            "task_definition": task_definition,
            "service_name": config.service_name,
            "desired_count": config.desired_count,
            # Never below capacity during a deployment: chargers move only when new tasks are up.
            "min_healthy_percent": 100,
            "max_healthy_percent": 200,
            "circuit_breaker": ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            "health_check_grace_period": Duration.seconds(60),
            "vpc_subnets": PRIVATE,
            "security_groups": security_groups,
            "propagate_tags": ecs.PropagatedTagSource.SERVICE,
        }
        if config.compute == "fargate":
            return ecs.FargateService(self, "Service", assign_public_ip=False,
                                      platform_version=ecs.FargatePlatformVersion.LATEST, **common)
        capacity = self._ec2_capacity()
        return ecs.Ec2Service(
            self, "Service",
            capacity_provider_strategies=[ecs.CapacityProviderStrategy(
                capacity_provider=capacity.capacity_provider_name, weight=1)],
            placement_strategies=[ecs.PlacementStrategy.spread_across(ecs.BuiltInAttributes.AVAILABILITY_ZONE)],
            **common,
        )

    def _ec2_capacity(self) -> ecs.AsgCapacityProvider:
        """EC2 hosts in an Auto Scaling group that ECS scales (managed scaling) to fit the tasks."""
        config = self.config
        hosts = autoscaling.AutoScalingGroup(
            self, "Hosts",
            vpc=self.cluster.vpc,
            vpc_subnets=PRIVATE,
            instance_type=ec2.InstanceType(config.instance_type),
            machine_image=ecs.EcsOptimizedImage.amazon_linux2023(),
            min_capacity=config.min_tasks,
            max_capacity=config.max_tasks,
            require_imdsv2=True,
            new_instances_protected_from_scale_in=True,
            block_devices=[autoscaling.BlockDevice(
                device_name="/dev/xvda",
                volume=autoscaling.BlockDeviceVolume.ebs(30, encrypted=True,
                                                         volume_type=autoscaling.EbsDeviceVolumeType.GP3))],
        )
        capacity = ecs.AsgCapacityProvider(self, "Capacity", auto_scaling_group=hosts,
                                           enable_managed_termination_protection=True,
                                           target_capacity_percent=100)
        self.cluster.add_asg_capacity_provider(capacity)
        for finding in ("Action::ecs:Submit*", "Resource::*"):
            acknowledge(hosts, f"AwsSolutions-IAM5[{finding}]",
                        "ECS container agent permissions that CDK grants the instance role (as in "
                        "AmazonEC2ContainerServiceforEC2Role); these agent APIs have no resource scoping.")
        acknowledge(hosts, "AwsSolutions-AS3",
                    "Hosts are scaled by the ECS capacity provider; scaling activity is in the ASG history "
                    "and ECS service events, and service health alarms live in the observability stack.")
        return capacity

    def _load_balancer(self, vpc: ec2.IVpc, task_security_group: ec2.SecurityGroup) -> None:
        config = self.config
        nlb_security_group = ec2.SecurityGroup(self, "NlbSecurityGroup", vpc=vpc, allow_all_outbound=False,
                                               description="Chargers to the adapter NLB")
        nlb_security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(config.public_port), "chargers")
        nlb_security_group.add_egress_rule(task_security_group, ec2.Port.tcp(config.adapter_port), "adapters")
        task_security_group.add_ingress_rule(nlb_security_group, ec2.Port.tcp(config.adapter_port),
                                             "NLB traffic and health checks")
        acknowledge(nlb_security_group, "AwsSolutions-EC23",
                    "Chargers connect from the public internet (cellular and site networks with changing "
                    "addresses); they authenticate per OCPP security profile on the adapter.")

        self.nlb = elbv2.NetworkLoadBalancer(
            self, "Nlb", vpc=vpc, internet_facing=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[nlb_security_group], cross_zone_enabled=True)
        self._access_logs(private_bucket(self, "NlbLogs", access_logs=None, expire_after=Duration.days(90)))
        listener = self.nlb.add_listener(
            "Chargers",
            port=config.public_port,
            protocol=elbv2.Protocol.TLS if config.tls else elbv2.Protocol.TCP,
            certificates=[elbv2.ListenerCertificate.from_arn(config.certificate_arn)] if config.tls else None,
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS if config.tls else None,
        )
        self.target_group = listener.add_targets(
            "Adapters",
            port=config.adapter_port,
            protocol=elbv2.Protocol.TCP,
            targets=[self.service.load_balancer_target(container_name=CONTAINER,
                                                       container_port=config.adapter_port)],
            health_check=elbv2.HealthCheck(
                protocol=elbv2.Protocol.HTTP, path="/healthz", port=str(config.adapter_port),
                interval=Duration.seconds(10), timeout=Duration.seconds(5),
                healthy_threshold_count=2, unhealthy_threshold_count=2),
            # Short: the adapter itself drains sessions after SIGTERM, within the stop timeout.
            deregistration_delay=Duration.seconds(config.deregistration_delay_s),
            # IP targets see an NLB node as every charger's source (throttling, logs, lifecycle events would
            # lose the charger's address): the NLB says who connected in a PROXY v2 header, health checks
            # included (a LOCAL one), and the container's PROXY_PROTOCOL makes the adapter read it.
            proxy_protocol_v2=True,
        )

    def _access_logs(self, bucket: s3.Bucket) -> None:
        """NLB access logs (TLS connections) through the log delivery service.

        ``log_access_logs`` needs a concrete region (it also trusts the regional ALB log account); an NLB
        only needs ``delivery.logs.amazonaws.com``, which keeps this stack environment-agnostic.
        """
        prefix = "nlb"
        for key, value in (("enabled", "true"), ("bucket", bucket.bucket_name), ("prefix", prefix)):
            self.nlb.set_attribute(f"access_logs.s3.{key}", value)
        delivery = iam.ServicePrincipal("delivery.logs.amazonaws.com")
        same_account = {"aws:SourceAccount": self.account}
        bucket.add_to_resource_policy(iam.PolicyStatement(
            actions=["s3:PutObject"], principals=[delivery],
            resources=[bucket.arn_for_objects(f"{prefix}/AWSLogs/{self.account}/*")],
            conditions={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", **same_account}}))
        bucket.add_to_resource_policy(iam.PolicyStatement(
            actions=["s3:GetBucketAcl"], principals=[delivery], resources=[bucket.bucket_arn],
            conditions={"StringEquals": same_account}))
        policy = bucket.policy
        assert policy is not None  # created by add_to_resource_policy (and enforce_ssl)
        self.nlb.node.add_dependency(policy)

    def _autoscaling(self) -> None:
        """Target tracking on connections per task and CPU; a latency step policy as the emergency brake."""
        config = self.config
        scaling = self.service.auto_scale_task_count(min_capacity=config.min_tasks,
                                                     max_capacity=config.max_tasks)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=config.cpu_target_percent,
                                         scale_in_cooldown=Duration.minutes(10),
                                         scale_out_cooldown=Duration.minutes(2))
        # The gauges are per worker process, so their average is too: a task of N workers holds N times it.
        scaling.scale_to_track_custom_metric("Connections", metric=connections_per_process(config),
                                             target_value=config.connections_per_task / config.workers,
                                             scale_in_cooldown=Duration.minutes(10),
                                             scale_out_cooldown=Duration.minutes(2))
        threshold = config.latency_p99_scale_out_ms
        scaling.scale_on_metric(
            "Latency", metric=message_latency_p99(config),
            scaling_steps=[appscaling.ScalingInterval(upper=threshold, change=0),
                           appscaling.ScalingInterval(lower=threshold, change=+1),
                           appscaling.ScalingInterval(lower=4 * threshold, change=+3)],
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=Duration.minutes(3),
            evaluation_periods=3,
            datapoints_to_alarm=2,
        )
