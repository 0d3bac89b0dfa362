"""Data stack: DocumentDB with credentials in Secrets Manager, or an external MongoDB URI secret."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from tests.infra.helpers import container, environment
from tests.infra.synth import synth

pytestmark = pytest.mark.infra


def test_documentdb_cluster_hardened() -> None:
    s = synth("fargate-tls")
    assert s.deployment.data is not None
    template = s.template(s.deployment.data)
    template.has_resource_properties("AWS::DocDB::DBCluster", {
        "StorageEncrypted": True,
        "DeletionProtection": True,
        "BackupRetentionPeriod": 7,
        "EnableCloudwatchLogsExports": ["audit", "profiler"],
        "MasterUsername": Match.any_value(),
    })
    template.resource_count_is("AWS::DocDB::DBInstance", s.config.docdb_instances)
    template.has_resource_properties("AWS::DocDB::DBClusterParameterGroup", {
        "Parameters": Match.object_like({"tls": "enabled", "audit_logs": "ddl"})})
    template.resource_count_is("AWS::SecretsManager::RotationSchedule", 1)
    (cluster,) = s.resources(s.deployment.data, "AWS::DocDB::DBCluster").values()
    credentials = json.dumps([cluster["Properties"]["MasterUsername"], cluster["Properties"]["MasterUserPassword"]])
    assert credentials.count("{{resolve:secretsmanager:") == 2


def test_only_the_client_security_group_reaches_the_database() -> None:
    s = synth("fargate-tls")
    assert s.deployment.data is not None
    ingress = s.resources(s.deployment.data, "AWS::EC2::SecurityGroupIngress").values()
    db_rules = [r["Properties"] for r in ingress if r["Properties"].get("FromPort") == 27117]
    assert db_rules and all("SourceSecurityGroupId" in rule and "CidrIp" not in rule for rule in db_rules)
    (service,) = s.resources(s.deployment.service, "AWS::ECS::Service").values()
    groups = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
    assert any("DbClients" in json.dumps(group) for group in groups)


def test_service_gets_store_url_and_credentials_from_the_cluster_secret() -> None:
    s = synth("fargate-tls")
    url = json.dumps(environment(s)["STORE_URL"])
    assert url.startswith('{"Fn::Join"') and "mongodb://" in url and "tls=true" in url
    assert "retryWrites=false" in url  # DocumentDB does not support retryable writes
    assert "readPreference=primaryPreferred" in url  # a lagging replica would serve a superseded password
    secrets = {secret["Name"]: json.dumps(secret["ValueFrom"]) for secret in container(s)["Secrets"]}
    assert set(secrets) == {"STORE_USERNAME", "STORE_PASSWORD"}
    assert ":username::" in secrets["STORE_USERNAME"] and ":password::" in secrets["STORE_PASSWORD"]


def test_external_mongodb_needs_no_data_stack() -> None:
    s = synth("ec2-plain")
    assert s.deployment.data is None
    for stack in s.deployment.stacks():
        s.template(stack).resource_count_is("AWS::DocDB::DBCluster", 0)
    (secret,) = container(s)["Secrets"]
    assert secret["Name"] == "STORE_URL"
    assert "secret:ocpp/mongodb-uri" in json.dumps(secret["ValueFrom"])
    assert "STORE_URL" not in environment(s)
