"""AWS CDK (Python) infrastructure for the OCPP adapter; ``app.py`` composes it from CDK context.

Node 20 is past jsii's support window but is what this machine ships; silence jsii's banner for it before
aws_cdk is first imported (the value lists the node major versions to stay quiet about).
"""

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
