"""Synthesize the whole CDK app once per variant per test session (jsii start-up and synthesis are slow).

Two variants cover both values of every switch: Fargate + TLS + DocumentDB + per-charger MQTT identities
under a charger id prefix + cdk.json's registration policy (known), and EC2 capacity + plain TCP + external
MongoDB + shared MQTT identities + open registration.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from infra.compose import Deployment, build, cdk_json_context
from infra.config import DeployConfig

CERTIFICATE_ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
IOT_ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com"
VARIANTS: dict[str, dict[str, Any]] = {
    "fargate-tls": {"ocpp:compute": "fargate", "ocpp:certificateArn": CERTIFICATE_ARN,
                    "ocpp:database": "documentdb", "ocpp:mqttMode": "per-charger",
                    "ocpp:chargerIdPrefix": "CP-", "ocpp:iotEndpoint": IOT_ENDPOINT},
    "ec2-plain": {"ocpp:compute": "ec2", "ocpp:certificateArn": "", "ocpp:database": "external",
                  "ocpp:mongoUriSecretName": "ocpp/mongodb-uri", "ocpp:mqttMode": "shared",
                  "ocpp:chargerIdPrefix": "", "ocpp:iotEndpoint": "", "ocpp:registration": "open",
                  "ocpp:taskCpu": 2048},
}


@dataclass
class Synth:
    app: App
    config: DeployConfig
    deployment: Deployment

    def template(self, stack: Stack) -> Template:
        return Template.from_stack(stack)

    def json(self, stack: Stack) -> dict[str, Any]:
        return dict(Template.from_stack(stack).to_json())

    def resources(self, stack: Stack, resource_type: str) -> dict[str, dict[str, Any]]:
        return {logical_id: resource for logical_id, resource in self.json(stack)["Resources"].items()
                if resource["Type"] == resource_type}


@functools.cache
def synth(variant: str) -> Synth:
    outdir = tempfile.mkdtemp(prefix=f"cdk-{variant}-")
    atexit.register(shutil.rmtree, outdir, True)
    app = App(context={**cdk_json_context(), **VARIANTS[variant]}, outdir=outdir)
    config = DeployConfig.from_context(app.node)
    deployment = build(app, config)
    app.synth()  # runs the cdk-nag plugin: raises on any unacknowledged finding
    return Synth(app, config, deployment)
