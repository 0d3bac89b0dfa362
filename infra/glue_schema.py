"""Glue table columns derived from the canonical event JSON Schemas (``docs/events/*.schema.json``).

The schemas are the contract (written from ``adapter/normalize/event_schemas.py``); deriving the catalog
from them at synth time means a new event field reaches Athena with the next deploy instead of drifting.
Envelope fields become top-level columns and ``data`` a struct; ISO-8601 timestamps stay strings (query
them with ``from_iso8601_timestamp``), free-form objects (a charger's raw request) stay JSON text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.common import REPO_ROOT

SCHEMA_DIR = REPO_ROOT / "docs" / "events"
SCALARS = {"string": "string", "integer": "bigint", "number": "double", "boolean": "boolean"}


@dataclass(frozen=True)
class EventTable:
    name: str  # the event type, also the table name
    columns: list[tuple[str, str]]  # (name, Hive type), in schema order


def hive_type(schema: dict[str, Any]) -> str:
    """Map one JSON-Schema node to a Hive type for the OpenX JSON SerDe."""
    if "const" in schema or "enum" in schema:
        values = [schema["const"]] if "const" in schema else schema["enum"]
        kinds = {type(v) for v in values if v is not None}
        return SCALARS["integer"] if kinds == {int} else SCALARS["string"]
    declared = schema.get("type", "object")
    types = [t for t in (declared if isinstance(declared, list) else [declared]) if t != "null"]
    kind = types[0] if len(types) == 1 else "string"  # unions of several types: keep the JSON text
    if kind == "array":
        return f"array<{hive_type(schema.get('items', {}))}>"
    if kind == "object":
        properties: dict[str, Any] = schema.get("properties", {})
        if not properties:
            return "string"
        return "struct<" + ",".join(f"{name}:{hive_type(sub)}" for name, sub in properties.items()) + ">"
    return SCALARS[kind]


def event_table(schema: dict[str, Any]) -> EventTable:
    event_type = schema["properties"]["type"]["const"]
    columns = [(name, hive_type(sub)) for name, sub in schema["properties"].items()]
    return EventTable(event_type, columns)


def event_tables(directory: Path = SCHEMA_DIR) -> list[EventTable]:
    """One table per schema file, sorted by file name for stable templates."""
    return [event_table(json.loads(path.read_text())) for path in sorted(directory.glob("*.schema.json"))]
