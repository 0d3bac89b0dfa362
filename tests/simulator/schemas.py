"""Validation against the official OCPP JSON schemas shipped in the `ocpp` package."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import ocpp

_ROOT = Path(ocpp.__file__).parent
_DIRS = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}

_formats = jsonschema.FormatChecker()


@_formats.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if isinstance(value, str):
        datetime.fromisoformat(value)
    return True


@cache
def _validator(version: str, action: str, response: bool) -> jsonschema.protocols.Validator:
    if version == "1.6":
        name = f"{action}Response.json" if response else f"{action}.json"
    else:
        name = f"{action}{'Response' if response else 'Request'}.json"
    schema = json.loads((_ROOT / _DIRS[version] / "schemas" / name).read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=_formats)


def validate(version: str, action: str, payload: dict[str, Any], response: bool = False) -> None:
    """Raise jsonschema.ValidationError unless the payload is valid for that version and action."""
    _validator(version, action, response).validate(payload)
