"""The fast verdict (jsonschema-rs) never accepts what the explaining validator (fastjsonschema) rejects.

Validation trusts the fast verdict alone when it says "valid", so a payload it accepts and fastjsonschema
rejects would skip a lenient repair or a strict-mode CALLERROR. For every schema of every version this builds
a payload with every property filled in, then one variant per value with each of the mistakes chargers make
(a float for an integer, a number as a string, an enum in the wrong case, an over-long string, a timestamp
without zone, an unknown field, a missing required field) and checks both validators give the same verdict.
"""

from __future__ import annotations

import copy
import pathlib
from collections.abc import Iterator
from typing import Any

import fastjsonschema
import orjson
import pytest

from adapter.ocpp.validation import compiled
from adapter.ocpp.versions import Version

Schema = dict[str, Any]
Path = tuple[str | int, ...]


def _resolve(node: Schema, root: Schema) -> Schema:
    while "$ref" in node:
        node = root["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _instance(node: Schema, root: Schema) -> Any:
    """A valid value using every property, so every leaf gets mutated."""
    node = _resolve(node, root)
    if "enum" in node:
        return node["enum"][-1]
    kind = node.get("type")
    if kind == "object":
        return {name: _instance(prop, root) for name, prop in node.get("properties", {}).items()}
    if kind == "array":
        return [_instance(node["items"], root) for _ in range(max(1, node.get("minItems", 1)))]
    if kind == "integer":
        return max(0, node.get("minimum", 0))
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if node.get("format") == "date-time":
        return "2026-12-05T08:00:00.000Z"
    return "x" * min(3, node.get("maxLength", 3))


def _leaves(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _with(payload: Any, path: Path, value: Any) -> Any:
    changed = copy.deepcopy(payload)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


def _without(payload: Any, path: Path) -> Any:
    changed = copy.deepcopy(payload)
    node = changed
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return changed


def _mistakes(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return ["true", 1]
    if isinstance(value, int):
        return [float(value), str(value), value + 0.5, None]
    if isinstance(value, float):
        return [str(value), "1.5.0"]
    if isinstance(value, str):
        return [value.lower(), value.upper(), value * 200, "2026-12-05T08:00:00", "2026-12-05 08:00:00Z", 7, ""]
    return []


def _variants(payload: Any) -> Iterator[Any]:
    yield payload
    yield {**payload, "unknownField": 1}
    for path, value in _leaves(payload):
        for mistake in _mistakes(value):
            yield _with(payload, path, mistake)
        yield _without(payload, path)


SCHEMAS = [(version, path) for version in Version for path in sorted(version.schema_dir.glob("*.json"))]


@pytest.mark.parametrize(("version", "path"), SCHEMAS, ids=[f"{v.value}-{p.stem}" for v, p in SCHEMAS])
def test_fast_verdict_agrees_with_explaining_validator(version: Version, path: pathlib.Path) -> None:
    response = path.stem.endswith("Response")
    check = compiled(version, path.stem.removesuffix("Response").removesuffix("Request"), response)
    assert check is not None
    schema = orjson.loads(path.read_bytes())
    disagreements = []
    for payload in _variants(_instance(schema, schema)):
        try:
            check.explain(payload)
            explained_valid = True
        except fastjsonschema.JsonSchemaValueException:
            explained_valid = False
        if check.accepts(payload) != explained_valid:
            disagreements.append((payload, check.accepts(payload), explained_valid))
    assert disagreements == []
