"""JSON Schema -> Hive type mapping used for the Glue tables (no synthesis needed)."""

from __future__ import annotations

from pathlib import Path

from infra.glue_schema import event_table, event_tables, hive_type


def test_scalars_and_nullable_unions() -> None:
    assert hive_type({"type": "string"}) == "string"
    assert hive_type({"type": ["integer", "null"]}) == "bigint"
    assert hive_type({"type": ["number", "null"]}) == "double"
    assert hive_type({"type": "boolean"}) == "boolean"
    assert hive_type({"type": ["string", "integer"]}) == "string"  # a real union keeps its JSON text
    assert hive_type({"type": "string", "format": "date-time"}) == "string"


def test_enums_and_consts() -> None:
    assert hive_type({"enum": ["available", "faulted"]}) == "string"
    assert hive_type({"const": "status"}) == "string"
    assert hive_type({"enum": [1, 2, None]}) == "bigint"


def test_objects_and_arrays() -> None:
    sample = {"type": "object", "properties": {"value": {"type": "number"}, "unit": {"type": "string"}}}
    assert hive_type({"type": "array", "items": sample}) == "array<struct<value:double,unit:string>>"
    assert hive_type({"type": "array", "items": {"type": "string"}}) == "array<string>"
    assert hive_type({"type": "object"}) == "string"  # free-form (a raw OCPP payload): JSON text
    assert hive_type({"type": ["object", "null"]}) == "string"


def test_event_table_keeps_schema_order(tmp_path: Path) -> None:
    schema = {"properties": {"event_id": {"type": "string"}, "type": {"const": "boot"},
                             "data": {"type": "object", "properties": {"vendor": {"type": "string"}}}}}
    table = event_table(schema)
    assert table.name == "boot"
    assert table.columns == [("event_id", "string"), ("type", "string"), ("data", "struct<vendor:string>")]
    (tmp_path / "boot.schema.json").write_text('{"properties": {"type": {"const": "boot"}}}')
    assert [t.name for t in event_tables(tmp_path)] == ["boot"]
