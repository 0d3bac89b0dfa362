"""The adapter's MongoDB: an Amazon DocumentDB cluster, or an existing MongoDB whose URI is a secret.

Either way the service gets a ``MongoAccess``: what the task needs in its environment and secrets, and the
security group that may reach the database (the service attaches it; no cross-stack ingress rules, so no
dependency cycle between the data and service stacks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_docdb as docdb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from adapter.config import env_name
from infra.common import LOG_RETENTION, acknowledge
from infra.config import DeployConfig

# DocumentDB needs the Amazon RDS CA bundle; the Dockerfile puts it here.
DOCDB_CA_FILE = "/etc/ssl/certs/rds-global-bundle.pem"
# Lets the adapter re-read credentials after a rotation instead of keeping the copy injected at start.
SECRET_ID_ENV = env_name("store_secret_id")
DOCDB_PORT = 27117  # not the MongoDB default: scanners looking for open MongoDB ports find nothing


@dataclass
class MongoAccess:
    environment: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, ecs.Secret] = field(default_factory=dict)
    # Secrets the task may re-read at run time (after a rotation the injected copy is stale).
    readable: list[secretsmanager.ISecret] = field(default_factory=list)
    client_security_group: ec2.ISecurityGroup | None = None


def external_mongo(scope: Construct, config: DeployConfig) -> MongoAccess:
    """An existing MongoDB (Atlas, self-managed): its full URI, credentials included, is one secret.

    Nothing to create, so no stack of its own: the importing stack references the secret by name.
    """
    uri_secret = secretsmanager.Secret.from_secret_name_v2(scope, "MongoUri", config.mongo_uri_secret_name)
    return MongoAccess(environment={SECRET_ID_ENV: config.mongo_uri_secret_name},
                       secrets={"STORE_URL": ecs.Secret.from_secrets_manager(uri_secret)},
                       readable=[uri_secret])


class DataStack(Stack):
    """Amazon DocumentDB (MongoDB API) in the private subnets, credentials in Secrets Manager."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, vpc: ec2.IVpc,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        clients = ec2.SecurityGroup(self, "DbClients", vpc=vpc, allow_all_outbound=True,
                                    description="Members may connect to DocumentDB")
        db_security_group = ec2.SecurityGroup(self, "Db", vpc=vpc, allow_all_outbound=False,
                                              description="DocumentDB: adapter tasks only")
        db_security_group.add_ingress_rule(clients, ec2.Port.tcp(DOCDB_PORT), "adapter tasks")
        cluster_name = f"{config.prefix.lower()}-adapter"
        # Our own log groups (DocumentDB writes to these names) instead of the LogRetention Lambda.
        log_groups = [logs.LogGroup(self, f"{kind.capitalize()}Logs",
                                    log_group_name=f"/aws/docdb/{cluster_name}/{kind}",
                                    retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
                      for kind in ("audit", "profiler")]
        parameters = docdb.ClusterParameterGroup(
            self, "Parameters", family="docdb5.0", description="OCPP adapter DocumentDB settings",
            parameters={
                "tls": "enabled",
                # DDL and authentication events (authenticate, createIndex, dropCollection...), not reads.
                "audit_logs": "ddl",
                "profiler": "enabled",
                "profiler_threshold_ms": "200",
            })
        cluster = docdb.DatabaseCluster(
            self, "Cluster",
            db_cluster_name=cluster_name,
            engine_version="5.0.0",
            parameter_group=parameters,
            master_user=docdb.Login(username="ocpp_admin"),
            instance_type=ec2.InstanceType(config.docdb_instance_type),
            instances=config.docdb_instances,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_group=db_security_group,
            port=DOCDB_PORT,
            storage_encrypted=True,
            backup=docdb.BackupProps(retention=Duration.days(7)),
            export_audit_logs_to_cloud_watch=True,
            export_profiler_logs_to_cloud_watch=True,
            deletion_protection=True,
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        for log_group in log_groups:
            cluster.node.add_dependency(log_group)
        acknowledge(cluster, "AwsSolutions-DOC3",
                    "The rule cannot resolve the credentials: they are {{resolve:secretsmanager}} references "
                    "to the secret generated for the cluster (rotated every 30 days).")
        for event in ("authenticate", "createIndex", "dropCollection"):
            acknowledge(cluster, f"AwsSolutions-DOC5[LogExport::{event}]",
                        "DocumentDB exports only 'audit' and 'profiler' logs; these events are in the "
                        "exported audit log because the parameter group sets audit_logs=ddl.")
        cluster.add_rotation_single_user(automatically_after=Duration.days(30))
        secret = cluster.secret
        assert secret is not None  # generated because master_user has no password
        # Reads from the primary: a replica may lag, and what the adapter reads it has usually just written (a
        # rotated password at the reconnect, a stored boot, a transaction a repeated StartTransaction matches).
        uri = (f"mongodb://{cluster.cluster_endpoint.hostname}:{DOCDB_PORT}/?tls=true"
               f"&tlsCAFile={DOCDB_CA_FILE}&replicaSet=rs0&readPreference=primaryPreferred"
               "&retryWrites=false")
        self.access = MongoAccess(
            # The URL carries no credentials: they come from the secret, as two separate variables.
            environment={"STORE_URL": uri, SECRET_ID_ENV: secret.secret_arn},
            secrets={"STORE_USERNAME": ecs.Secret.from_secrets_manager(secret, "username"),
                     "STORE_PASSWORD": ecs.Secret.from_secrets_manager(secret, "password")},
            readable=[secret],
            client_security_group=clients,
        )
