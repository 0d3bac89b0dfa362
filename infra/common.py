"""Small building blocks shared by the stacks: cdk-nag acknowledgements and locked-down S3 buckets."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

REPO_ROOT = Path(__file__).resolve().parents[1]
# Operational logs (flow logs, task logs, rule errors): long enough for an incident review.
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Suppress one cdk-nag finding on ``construct`` (and its children), with the reason kept in code."""
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def private_bucket(scope: Construct, construct_id: str, *, access_logs: s3.IBucket | None,
                   expire_after: Duration | None = None) -> s3.Bucket:
    """SSE-S3, TLS-only, no public access, retained on stack deletion (it holds data or audit logs).

    ``access_logs=None`` makes a terminal log bucket: logging a log bucket's own accesses would recurse.
    """
    bucket = s3.Bucket(
        scope, construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{construct_id}/" if access_logs else None,
        lifecycle_rules=[s3.LifecycleRule(expiration=expire_after)] if expire_after else None,
        removal_policy=RemovalPolicy.RETAIN,
    )
    if access_logs is None:
        acknowledge(bucket, "AwsSolutions-S1",
                    "Terminal log bucket: it receives access logs; logging its own accesses would recurse.")
    return bucket
