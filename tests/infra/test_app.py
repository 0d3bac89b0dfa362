"""The app entry point and its configuration: ``python app.py`` works offline, context is validated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
from aws_cdk import App

from adapter.security.registration import POLICIES
from infra.common import REPO_ROOT
from infra.compose import cdk_json_context
from infra.config import DeployConfig, Registration, context_key

STACKS = {"OcppNetwork", "OcppData", "OcppAnalytics", "OcppIot", "OcppService", "OcppObservability"}


@pytest.mark.infra
def test_python_app_py_synthesizes_every_stack_without_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["CDK_OUTDIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "end-of-life" not in result.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stacks = {name for name, artifact in manifest["artifacts"].items()
              if artifact["type"] == "aws:cloudformation:stack"}
    assert stacks == STACKS
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert all(plugin["conclusion"] == "success" for plugin in report["pluginReports"])


def test_cdk_json_runs_app_py() -> None:
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert cdk_json["app"].endswith("python app.py")
    assert DeployConfig.from_context(App(context=cdk_json_context()).node) == DeployConfig()


def test_deploy_doc_lists_every_context_value() -> None:
    doc = (REPO_ROOT / "docs" / "deploy.md").read_text()
    missing = [key for key in map(context_key, DeployConfig.defaults()) if f"`{key}`" not in doc]
    assert missing == []


def config(**context: object) -> DeployConfig:
    return DeployConfig.from_context(App(context={f"ocpp:{k}": v for k, v in context.items()}).node)


def test_context_values_from_the_command_line_are_coerced() -> None:
    """``cdk synth -c ocpp:maxTasks=20`` passes strings."""
    c = config(maxTasks="20", certificateArn="arn:aws:acm:x", compute="ec2")
    assert c.max_tasks == 20 and c.compute == "ec2"
    assert c.tls and c.public_port == 443
    assert config().public_port == 80


def test_registration_defaults_to_known_among_the_adapter_policies() -> None:
    assert config().registration == "known"
    assert config(registration="open").registration == "open"
    assert set(get_args(Registration)) == set(POLICIES)


@pytest.mark.parametrize(("context", "message"), [
    ({"compute": "lambda"}, "ocpp:compute must be one of"),
    ({"registration": "closed"}, "ocpp:registration must be one of"),
    ({"database": "external"}, "needs ocpp:mongoUriSecretName"),
    ({"minTasks": 3, "desiredCount": 2}, "minTasks <= desiredCount"),
    ({"stopTimeoutS": 300}, "at most 120 s"),
])
def test_invalid_context_is_rejected(context: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(**context)
