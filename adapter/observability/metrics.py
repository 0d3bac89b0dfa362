"""A tiny process-wide metrics registry: Prometheus text for /metrics, CloudWatch EMF lines for AWS.

Why not prometheus_client / aws-embedded-metrics: both are dependencies for ~200 lines of logic, and the
hot path here (``inc``/``observe`` once or twice per OCPP message at 5,000+ msg/s) must stay O(1) with one
dict lookup and no per-call objects beyond the series key. Series are keyed by
``(name, ((dim, value), ...))`` with dimensions sorted, so the same labels in any order hit one series.

The registry is meant for one asyncio loop thread (the EMF flush runs on that loop too). Prometheus output
is cumulative; EMF records carry deltas since the previous ``emf_document`` call (counters, histograms)
or the current value (gauges).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from adapter.observability import names

log = logging.getLogger(__name__)

PROMETHEUS_PREFIX = "ocpp_adapter_"
# Fixed latency buckets (milliseconds, inclusive upper bounds); the last bucket is +Inf.
BUCKETS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000,
)
# CloudWatch EMF accepts at most 100 values per metric in one record.
EMF_MAX_VALUES = 100

Dims = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Dims]

V = TypeVar("V")

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake_case(name: str) -> str:
    """``MessageLatencyMs`` -> ``message_latency_ms`` (Prometheus naming from the CloudWatch names)."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def _key(name: str, dims: Mapping[str, str]) -> SeriesKey:
    # Fast paths: no dimension or one dimension (the common "Action"/"Kind" case) need no sort.
    if not dims:
        return (name, ())
    if len(dims) == 1:
        return (name, tuple(dims.items()))
    return (name, tuple(sorted(dims.items())))


class Histogram:
    """Bucket counts plus count/sum/max: enough for Prometheus and for percentile estimates."""

    __slots__ = ("count", "counts", "max", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS_MS) + 1)
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS_MS, value)] += 1
        self.count += 1
        self.sum += value
        if value > self.max:
            self.max = value

    def quantile(self, q: float) -> float:
        """Estimated q-quantile (0..1) of everything observed, interpolated inside the bucket."""
        return quantile_from_buckets(self.counts, q, self.max)


def quantile_from_buckets(counts: list[int], q: float, observed_max: float) -> float:
    """Linear interpolation inside the bucket holding rank ``q * total``; +Inf is capped by the max seen."""
    total = sum(counts)
    if total == 0:
        return 0.0
    rank = q * total
    cumulative = 0
    for index, bucket_count in enumerate(counts):
        if bucket_count and cumulative + bucket_count >= rank:
            lower = BUCKETS_MS[index - 1] if index > 0 else 0.0
            upper = BUCKETS_MS[index] if index < len(BUCKETS_MS) else max(observed_max, lower)
            upper = min(upper, max(observed_max, lower))
            return lower + (upper - lower) * max(rank - cumulative, 0.0) / bucket_count
        cumulative += bucket_count
    return observed_max


def representative_values(counts: list[int], observed_max: float) -> list[float]:
    """Values whose distribution matches the buckets, for EMF (which takes values, not buckets).

    Up to ``EMF_MAX_VALUES`` values, one per quantile step, so CloudWatch percentiles (p50/p99) and the
    average match the histogram. For more observations than that, CloudWatch's SampleCount/Sum of this
    metric are those of the samples: count messages with the MessagesIn counter instead.
    """
    total = sum(counts)
    n = min(total, EMF_MAX_VALUES)
    return [round(quantile_from_buckets(counts, (i + 0.5) / n, observed_max), 3) for i in range(n)]


def parse_dimensions(spec: str) -> dict[str, str]:
    """``"Service=ocpp-adapter,Cluster=x"`` -> dict; blank or malformed items are ignored."""
    dims: dict[str, str] = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip() and value.strip():
            dims[key.strip()] = value.strip()
    return dims


class Metrics:
    """Counters, gauges and histograms keyed by name and dimensions."""

    def __init__(self, default_dimensions: Mapping[str, str] | None = None) -> None:
        # Default dimensions go to CloudWatch only: Prometheus scrapers add their own target labels.
        self.default_dimensions = dict(default_dimensions or {})
        self._counters: dict[SeriesKey, float] = {}
        self._gauges: dict[SeriesKey, float] = {}
        self._histograms: dict[SeriesKey, Histogram] = {}
        # Snapshots at the previous EMF flush, to emit deltas.
        self._emf_counters: dict[SeriesKey, float] = {}
        self._emf_histograms: dict[SeriesKey, list[int]] = {}

    # -- hot path -------------------------------------------------------------------------------------

    def inc(self, name: str, value: float = 1.0, **dims: str) -> None:
        key = _key(name, dims)
        self._counters[key] = self._counters.get(key, 0.0) + value

    def set_gauge(self, name: str, value: float, **dims: str) -> None:
        self._gauges[_key(name, dims)] = value

    def observe(self, name: str, value: float, **dims: str) -> None:
        key = _key(name, dims)
        histogram = self._histograms.get(key)
        if histogram is None:
            histogram = self._histograms[key] = Histogram()
        histogram.observe(value)

    # -- reading --------------------------------------------------------------------------------------

    def emitted_names(self) -> set[str]:
        return {name for series in (self._counters, self._gauges, self._histograms) for name, _ in series}

    def counter(self, name: str, **dims: str) -> float:
        return self._counters.get(_key(name, dims), 0.0)

    def histogram(self, name: str, **dims: str) -> Histogram | None:
        return self._histograms.get(_key(name, dims))

    def render_prometheus(self) -> str:
        """Text exposition format 0.0.4: ``# TYPE`` once per family, then its samples."""
        lines: list[str] = []
        self._render_family(lines, self._counters, "counter", "_total")
        self._render_family(lines, self._gauges, "gauge", "")
        for name, series in _by_name(self._histograms).items():
            family = PROMETHEUS_PREFIX + snake_case(name)
            lines.append(f"# TYPE {family} histogram")
            for dims, histogram in series:
                cumulative = 0
                for le, bucket_count in zip(_LE_LABELS, histogram.counts, strict=True):
                    cumulative += bucket_count
                    lines.append(f"{family}_bucket{_labels((*dims, ('le', le)))} {cumulative}")
                lines.append(f"{family}_sum{_labels(dims)} {_number(histogram.sum)}")
                lines.append(f"{family}_count{_labels(dims)} {histogram.count}")
        return "\n".join(lines) + "\n" if lines else ""

    @staticmethod
    def _render_family(lines: list[str], values: dict[SeriesKey, float], kind: str, suffix: str) -> None:
        for name, series in _by_name(values).items():
            family = PROMETHEUS_PREFIX + snake_case(name) + suffix
            lines.append(f"# TYPE {family} {kind}")
            lines.extend(f"{family}{_labels(dims)} {_number(value)}" for dims, value in series)

    def emf_document(self, now_ms: int) -> list[dict[str, Any]]:
        """CloudWatch Embedded Metric Format records, one per dimension set, for the interval just ended.

        A record with dimensions beyond the defaults also declares the defaults-only set, so CloudWatch
        keeps a roll-up (e.g. all Errors of the service) next to the per-Action/Kind series.
        """
        groups: dict[Dims, dict[str, tuple[str, float | list[float]]]] = {}
        for key, total in self._counters.items():
            delta = total - self._emf_counters.get(key, 0.0)
            self._emf_counters[key] = total
            groups.setdefault(key[1], {})[key[0]] = ("Count", delta)
        for key, value in self._gauges.items():
            groups.setdefault(key[1], {})[key[0]] = ("Count", value)
        for key, histogram in self._histograms.items():
            previous = self._emf_histograms.get(key)
            delta_counts = list(histogram.counts) if previous is None else [
                now - before for now, before in zip(histogram.counts, previous, strict=True)]
            self._emf_histograms[key] = list(histogram.counts)
            if any(delta_counts):
                values = representative_values(delta_counts, histogram.max)
                groups.setdefault(key[1], {})[key[0]] = ("Milliseconds", values)
        return [self._emf_record(dims, metrics, now_ms) for dims, metrics in sorted(groups.items())]

    def _emf_record(self, dims: Dims, metrics: dict[str, tuple[str, float | list[float]]],
                    now_ms: int) -> dict[str, Any]:
        dimension_values = {**self.default_dimensions, **dict(dims)}
        dimension_sets = [list(dimension_values)]
        if dims:
            dimension_sets.append([k for k in self.default_dimensions if k not in dict(dims)])
        record: dict[str, Any] = {
            "_aws": {
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{
                    "Namespace": names.NAMESPACE,
                    "Dimensions": dimension_sets,
                    "Metrics": [{"Name": name, "Unit": unit} for name, (unit, _) in sorted(metrics.items())],
                }],
            },
            **dimension_values,
        }
        record.update((name, value) for name, (_, value) in metrics.items())
        return record


def _by_name(values: dict[SeriesKey, V]) -> dict[str, list[tuple[Dims, V]]]:
    families: dict[str, list[tuple[Dims, V]]] = {}
    for (name, dims), value in sorted(values.items(), key=lambda item: item[0]):
        families.setdefault(name, []).append((dims, value))
    return families


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(dims: Dims) -> str:
    if not dims:
        return ""
    return "{" + ",".join(f'{snake_case(k)}="{_escape(v)}"' for k, v in dims) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


_LE_LABELS = (*(_number(bound) for bound in BUCKETS_MS), "+Inf")


def _write_records(metrics: Metrics, write: Callable[[str], None]) -> None:
    for record in metrics.emf_document(int(time.time() * 1000)):
        write(json.dumps(record, separators=(",", ":")) + "\n")


async def run_emf_flusher(metrics: Metrics, interval_s: float, write: Callable[[str], None]) -> None:
    """Every ``interval_s``, hand each EMF record to ``write`` as one line (trailing newline included).

    With ``write=sys.stdout.write`` and the awslogs driver, CloudWatch Logs extracts the metrics. A last
    flush runs when the task is cancelled, so a draining adapter still reports its final interval.
    """
    try:
        while True:
            await asyncio.sleep(interval_s)
            try:
                _write_records(metrics, write)
            except Exception:  # a broken sink must not stop the adapter's metrics for good
                log.exception("EMF flush failed")
    finally:
        _write_records(metrics, write)


METRICS = Metrics(parse_dimensions(os.environ.get(names.DIMENSIONS_ENV, "")))
