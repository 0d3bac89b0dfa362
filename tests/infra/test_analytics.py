"""Analytics stack: Kinesis, Firehose with dynamic partitioning, Glue tables from the event schemas, Athena."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.common import REPO_ROOT
from tests.infra.synth import synth

pytestmark = pytest.mark.infra
SCHEMAS = sorted((REPO_ROOT / "docs" / "events").glob("*.schema.json"))
QUERIES = sorted((REPO_ROOT / "analytics" / "queries").glob("*.sql"))


@pytest.fixture(scope="module")
def analytics() -> Any:
    s = synth("fargate-tls")
    return s, s.deployment.analytics


def test_stream_encrypted_with_the_kinesis_managed_key(analytics: Any) -> None:
    s, stack = analytics
    s.template(stack).has_resource_properties("AWS::Kinesis::Stream", {
        "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}})


def test_firehose_partitions_by_event_type_and_date(analytics: Any) -> None:
    s, stack = analytics
    (delivery,) = s.resources(stack, "AWS::KinesisFirehose::DeliveryStream").values()
    props = delivery["Properties"]
    assert props["DeliveryStreamType"] == "KinesisStreamAsSource"
    destination = props["ExtendedS3DestinationConfiguration"]
    assert destination["DynamicPartitioningConfiguration"]["Enabled"] is True
    assert destination["Prefix"] == "events/type=!{partitionKeyFromQuery:type}/dt=!{partitionKeyFromQuery:dt}/"
    assert "!{firehose:error-output-type}" in destination["ErrorOutputPrefix"]
    assert destination["CompressionFormat"] == "GZIP"
    processors = {p["Type"]: p.get("Parameters", []) for p in destination["ProcessingConfiguration"]["Processors"]}
    assert "AppendDelimiterToRecord" in processors  # one JSON document per line for the SerDe
    query = {p["ParameterName"]: p["ParameterValue"] for p in processors["MetadataExtraction"]}
    # jq over each event: its own type and the day it was received.
    assert query == {"MetadataExtractionQuery": '{"type":.type,"dt":.received_at[0:10]}',
                     "JsonParsingEngine": "JQ-1.6"}


def parse_hive(text: str) -> Any:
    """Hive type text -> "scalar" | ("array", element) | ("struct", [(name, type), ...])."""
    def parse(i: int) -> tuple[Any, int]:
        for kind in ("array<", "struct<"):
            if text.startswith(kind, i):
                i += len(kind)
                if kind == "array<":
                    element, i = parse(i)
                    return ("array", element), i + 1
                fields = []
                while text[i] != ">":
                    name, _, _ = text[i:].partition(":")
                    value, i = parse(i + len(name) + 1)
                    fields.append((name, value))
                    i += text[i] == ","
                return ("struct", fields), i + 1
        scalar = re.match(r"[a-z]+", text[i:])
        assert scalar
        return scalar.group(), i + scalar.end()
    value, end = parse(0)
    assert end == len(text), text
    return value


def matches(schema: dict[str, Any], hive: Any) -> bool:
    """Does a parsed Hive type faithfully hold values of this JSON-Schema node?"""
    types = [t for t in (schema["type"] if isinstance(schema.get("type"), list) else [schema.get("type")])
             if t != "null"]
    if types == ["array"]:
        return isinstance(hive, tuple) and hive[0] == "array" and matches(schema["items"], hive[1])
    if types == ["object"] and schema.get("properties"):
        return (isinstance(hive, tuple) and hive[0] == "struct"
                and [name for name, _ in hive[1]] == list(schema["properties"])
                and all(matches(schema["properties"][n], t) for n, t in hive[1]))
    scalars = {"integer": "bigint", "number": "double", "boolean": "boolean"}
    return bool(hive == scalars.get(str(types[0]) if types else "", "string"))


def test_glue_table_columns_match_the_event_json_schemas(analytics: Any) -> None:
    s, stack = analytics
    tables = {t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
              for t in s.resources(stack, "AWS::Glue::Table").values()}
    assert SCHEMAS and len(tables) == len(SCHEMAS)  # one table per schema file
    for path in SCHEMAS:
        schema = json.loads(path.read_text())
        table = tables[schema["properties"]["type"]["const"]]
        columns = table["StorageDescriptor"]["Columns"]
        assert [c["Name"] for c in columns] == list(schema["properties"]), path.name
        for column in columns:
            assert matches(schema["properties"][column["Name"]], parse_hive(column["Type"])), (path.name, column)
        data = parse_hive(next(c["Type"] for c in columns if c["Name"] == "data"))
        assert [name for name, _ in data[1]] == list(schema["properties"]["data"]["properties"])


def test_glue_tables_read_json_with_projected_day_partitions(analytics: Any) -> None:
    s, stack = analytics
    for table in s.resources(stack, "AWS::Glue::Table").values():
        table_input = table["Properties"]["TableInput"]
        descriptor = table_input["StorageDescriptor"]
        assert descriptor["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
        assert f"/events/type={table_input['Name']}/" in json.dumps(descriptor["Location"])
        assert table_input["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
        assert table_input["Parameters"]["projection.enabled"] == "true"
        assert table_input["Parameters"]["projection.dt.format"] == "yyyy-MM-dd"


def test_athena_workgroup_and_named_queries_from_the_sql_files(analytics: Any) -> None:
    s, stack = analytics
    template = s.template(stack)
    template.has_resource_properties("AWS::Athena::WorkGroup", {"WorkGroupConfiguration": Match.object_like({
        "EnforceWorkGroupConfiguration": True,
        "ResultConfiguration": Match.object_like({"EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}}),
    })})
    queries = {q["Properties"]["Name"]: q["Properties"]
               for q in s.resources(stack, "AWS::Athena::NamedQuery").values()}
    assert {"utilization_per_charger", "session_duration"} <= set(queries)
    assert set(queries) == {path.stem for path in QUERIES}
    for path in QUERIES:
        assert queries[path.stem]["QueryString"] == path.read_text()
        assert queries[path.stem]["Database"] == stack.database_name


def test_queries_only_use_tables_that_exist() -> None:
    table_names = {json.loads(p.read_text())["properties"]["type"]["const"] for p in SCHEMAS}
    for path in QUERIES:
        used = set(re.findall(r"\bFROM\s+([a-z_]+)", path.read_text(), flags=re.IGNORECASE))
        ctes = set(re.findall(r"\b([a-z_]+)\s+AS\s*\(", path.read_text(), flags=re.IGNORECASE))
        assert used - ctes <= table_names, path.name
