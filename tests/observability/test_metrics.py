"""The metrics registry: Prometheus text exposition, CloudWatch EMF records, percentile estimates."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from adapter.observability import names
from adapter.observability.metrics import (
    BUCKETS_MS,
    EMF_MAX_VALUES,
    Metrics,
    parse_dimensions,
    run_emf_flusher,
    snake_case,
)

# One sample line of the 0.0.4 text format: name, optional {labels}, value.
SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? \S+$')


def test_snake_case_of_every_metric_name() -> None:
    assert snake_case(names.MESSAGE_LATENCY_MS) == "message_latency_ms"
    assert snake_case(names.MQTT_RECONNECTS) == "mqtt_reconnects"
    assert all(re.fullmatch(r"[a-z_]+", snake_case(n)) for n in names.METRIC_NAMES)


def test_prometheus_text_format() -> None:
    m = Metrics(default_dimensions={names.SERVICE_DIMENSION: "svc"})
    m.inc(names.MESSAGES_IN, Action="BootNotification")
    m.inc(names.MESSAGES_IN, 2, Action="Heartbeat")
    m.inc(names.ERRORS, Kind='bad "quote"\n')
    m.set_gauge(names.ACTIVE_CONNECTIONS, 42)
    for v in (0.5, 3, 3, 70, 100_000):
        m.observe(names.MESSAGE_LATENCY_MS, v)
    text = m.render_prometheus()
    lines = text.splitlines()
    assert text.endswith("\n")
    for line in lines:
        assert line.startswith("# TYPE ") or SAMPLE.match(line), line
    assert "# TYPE ocpp_adapter_messages_in_total counter" in lines
    assert 'ocpp_adapter_messages_in_total{action="BootNotification"} 1' in lines
    assert 'ocpp_adapter_messages_in_total{action="Heartbeat"} 2' in lines
    assert 'ocpp_adapter_errors_total{kind="bad \\"quote\\"\\n"} 1' in lines
    assert "# TYPE ocpp_adapter_active_connections gauge" in lines
    assert "ocpp_adapter_active_connections 42" in lines
    assert "# TYPE ocpp_adapter_message_latency_ms histogram" in lines
    assert 'ocpp_adapter_message_latency_ms_bucket{le="1"} 1' in lines
    assert 'ocpp_adapter_message_latency_ms_bucket{le="5"} 3' in lines
    assert 'ocpp_adapter_message_latency_ms_bucket{le="60000"} 4' in lines
    assert 'ocpp_adapter_message_latency_ms_bucket{le="+Inf"} 5' in lines
    assert "ocpp_adapter_message_latency_ms_count 5" in lines
    assert "ocpp_adapter_message_latency_ms_sum 100076.5" in lines
    # Default (CloudWatch) dimensions are not Prometheus labels; each family is typed exactly once.
    assert "svc" not in text
    types = [line.split()[2] for line in lines if line.startswith("# TYPE")]
    assert len(types) == len(set(types)) == 4


def test_bucket_counts_are_cumulative_and_monotonic() -> None:
    m = Metrics()
    for v in range(1, 2001):
        m.observe(names.REQUEST_LATENCY_MS, float(v), Operation="Reset")
    buckets = [int(line.rsplit(" ", 1)[1]) for line in m.render_prometheus().splitlines()
               if "_bucket" in line]
    assert len(buckets) == len(BUCKETS_MS) + 1
    assert buckets == sorted(buckets) and buckets[-1] == 2000


def test_empty_registry_renders_nothing() -> None:
    assert Metrics().render_prometheus() == ""
    assert Metrics().emf_document(0) == []


def test_dimension_order_does_not_split_series() -> None:
    m = Metrics()
    m.inc(names.ERRORS, Kind="x", Action="y")
    m.inc(names.ERRORS, Action="y", Kind="x")
    assert 'ocpp_adapter_errors_total{action="y",kind="x"} 2' in m.render_prometheus()
    assert m.emitted_names() == {names.ERRORS}


def test_p99_estimate_within_bucket_resolution() -> None:
    m = Metrics()
    for v in range(1, 1001):
        m.observe(names.MESSAGE_LATENCY_MS, float(v))
    h = m.histogram(names.MESSAGE_LATENCY_MS)
    assert h is not None and h.count == 1000
    assert h.quantile(0.99) == pytest.approx(990, abs=10)
    assert h.quantile(0.5) == pytest.approx(500, abs=50)
    assert h.quantile(1.0) <= h.max == 1000


def test_emf_shape_and_roll_up() -> None:
    m = Metrics(default_dimensions={names.SERVICE_DIMENSION: "ocpp-adapter"})
    m.inc(names.MESSAGES_IN, Action="Heartbeat")
    m.inc(names.MESSAGES_IN, Action="Heartbeat")
    m.set_gauge(names.ACTIVE_CONNECTIONS, 7)
    m.observe(names.MESSAGE_LATENCY_MS, 12.0)
    records = m.emf_document(1_700_000_000_000)
    assert len(records) == 2  # one per dimension set
    for record in records:
        json.dumps(record)  # serialisable
        meta = record["_aws"]
        assert meta["Timestamp"] == 1_700_000_000_000
        (directive,) = meta["CloudWatchMetrics"]
        assert directive["Namespace"] == names.NAMESPACE
        for dimension_set in directive["Dimensions"]:
            assert all(isinstance(record[d], str) for d in dimension_set)
        for metric in directive["Metrics"]:
            assert metric["Name"] in names.METRIC_NAMES
            value = record[metric["Name"]]
            assert isinstance(value, int | float) or 0 < len(value) <= EMF_MAX_VALUES
    service_only, per_action = records
    assert service_only["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Service"]]
    assert service_only[names.ACTIVE_CONNECTIONS] == 7
    assert service_only[names.MESSAGE_LATENCY_MS] == [pytest.approx(12, abs=8)]
    units = {x["Name"]: x["Unit"] for x in service_only["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {names.ACTIVE_CONNECTIONS: "Count", names.MESSAGE_LATENCY_MS: "Milliseconds"}
    assert per_action["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Service", "Action"], ["Service"]]
    assert per_action["Action"] == "Heartbeat" and per_action[names.MESSAGES_IN] == 2


def test_emf_emits_deltas_since_last_call() -> None:
    m = Metrics()
    m.inc(names.OUTBOX_WRITES, 3)
    m.observe(names.MESSAGE_LATENCY_MS, 5)
    m.emf_document(1)
    m.inc(names.OUTBOX_WRITES, 2)
    m.set_gauge(names.ACTIVE_CONNECTIONS, 1)
    (record,) = m.emf_document(2)
    assert record[names.OUTBOX_WRITES] == 2
    assert names.MESSAGE_LATENCY_MS not in record  # nothing observed in this interval
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]
    for _ in range(1000):
        m.observe(names.MESSAGE_LATENCY_MS, 150)
    (record,) = m.emf_document(3)
    values = record[names.MESSAGE_LATENCY_MS]
    assert len(values) == EMF_MAX_VALUES
    assert all(100 <= v <= 150 for v in values)
    assert record[names.OUTBOX_WRITES] == 0
    # Prometheus stays cumulative across EMF flushes.
    assert "ocpp_adapter_outbox_writes_total 5" in m.render_prometheus()


def test_parse_dimensions() -> None:
    assert parse_dimensions("Service=ocpp-adapter, Cluster = c1,,bad,=x,y=") == {
        "Service": "ocpp-adapter", "Cluster": "c1"}
    assert parse_dimensions("") == {}


async def test_flusher_writes_json_lines_and_flushes_on_cancel() -> None:
    m = Metrics()
    lines: list[str] = []
    m.inc(names.MQTT_RECONNECTS)
    task = asyncio.create_task(run_emf_flusher(m, 0.01, lines.append))
    await asyncio.sleep(0.05)
    m.inc(names.MQTT_RECONNECTS, 4)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lines and all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    records = [json.loads(line) for line in lines]
    assert sum(r[names.MQTT_RECONNECTS] for r in records) == 5


async def test_flusher_survives_a_failing_sink() -> None:
    m = Metrics()
    m.inc(names.ERRORS)
    calls: list[str] = []

    def flaky(line: str) -> None:
        calls.append(line)
        if len(calls) == 1:
            raise OSError("stdout closed")

    task = asyncio.create_task(run_emf_flusher(m, 0.01, flaky))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) > 1
