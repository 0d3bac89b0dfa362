"""CDK assertion tests. Importing ``infra`` first quiets jsii's node banner before aws_cdk loads."""

import infra  # noqa: F401
