"""Compose the stacks from a ``DeployConfig`` and attach cdk-nag, for ``app.py`` and the tests alike."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from aws_cdk import App, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra.analytics import AnalyticsStack
from infra.common import REPO_ROOT
from infra.config import DeployConfig
from infra.data import DataStack
from infra.iot import IotStack
from infra.network import NetworkStack
from infra.observability import ObservabilityStack
from infra.service import ServiceStack


@dataclass
class Deployment:
    network: NetworkStack
    data: DataStack | None  # None with an external MongoDB
    analytics: AnalyticsStack
    iot: IotStack
    service: ServiceStack
    observability: ObservabilityStack

    def stacks(self) -> list[Stack]:
        return [stack for stack in (self.network, self.data, self.analytics, self.iot, self.service,
                                    self.observability) if stack is not None]


def build(app: App, config: DeployConfig) -> Deployment:
    """Environment-agnostic stacks (no account/region lookups), so synthesis needs no AWS credentials."""
    p = config.prefix
    network = NetworkStack(app, f"{p}Network", config=config, description="OCPP adapter: VPC")
    data = (DataStack(app, f"{p}Data", config=config, vpc=network.vpc, description="OCPP adapter: DocumentDB")
            if config.database == "documentdb" else None)
    analytics = AnalyticsStack(app, f"{p}Analytics", config=config,
                               description="OCPP adapter: event stream, S3 data lake, Glue, Athena")
    iot = IotStack(app, f"{p}Iot", config=config, stream=analytics.stream,
                   description="OCPP adapter: IoT Core thing type/group, policy, rules")
    service = ServiceStack(app, f"{p}Service", config=config, vpc=network.vpc,
                           mongo=data.access if data else None,
                           description="OCPP adapter: ECS service behind a Network Load Balancer")
    observability = ObservabilityStack(app, f"{p}Observability", config=config, service=service,
                                       description="OCPP adapter: dashboard and alarms")
    deployment = Deployment(network, data, analytics, iot, service, observability)
    for stack in deployment.stacks():
        Tags.of(stack).add("project", "ocpp-adapter")
    # Any unacknowledged AwsSolutions finding fails synthesis.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return deployment


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context, so ``python app.py`` synthesizes exactly what ``cdk synth`` does."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


def main() -> None:
    # Under the CDK CLI, CDK_OUTDIR (and the CLI's context) take precedence; alone, write ./cdk.out.
    app = App(context=cdk_json_context(), outdir=None if "CDK_OUTDIR" in os.environ else "cdk.out")
    build(app, DeployConfig.from_context(app.node))
    app.synth()
