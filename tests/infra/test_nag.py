"""cdk-nag AwsSolutions and CDK annotations: nothing unacknowledged, every acknowledgement explained."""

from __future__ import annotations

import pytest
from aws_cdk import Validations
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks

from tests.infra.synth import VARIANTS, synth

pytestmark = pytest.mark.infra


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_aws_solutions_checks_pass(variant: str) -> None:
    report = AwsSolutionsChecks().validate_scope(synth(variant).app)
    findings = [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in report.violations]
    assert findings == []
    assert report.success


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_no_warning_or_error_annotations(variant: str) -> None:
    for stack in synth(variant).deployment.stacks():
        annotations = Annotations.from_stack(stack)
        assert annotations.find_error("*", Match.any_value()) == [], stack.stack_name
        assert annotations.find_warning("*", Match.any_value()) == [], stack.stack_name


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_acknowledgement_gives_a_reason(variant: str) -> None:
    acknowledged: dict[str, str] = {}
    for construct in synth(variant).app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                acknowledged.update(entry.data)
    nag = {rule: reason for rule, reason in acknowledged.items() if "AwsSolutions-" in rule}
    assert nag
    for rule, reason in nag.items():
        assert len(reason.split()) >= 8, (rule, reason)  # a sentence, not a placeholder
    assert all(reason.strip() for reason in acknowledged.values())  # CDK's own ones included
