#!/usr/bin/env python3
"""CDK entry point: ``python app.py`` or ``npx aws-cdk@2 synth`` (see docs/deploy.md)."""

from infra.compose import main

if __name__ == "__main__":
    main()
