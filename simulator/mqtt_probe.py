"""End-to-end latency at an MQTT subscriber: charger send -> event published by the adapter -> received.

Chargers in throughput runs add a marker sample to periodic meter values whose value is the send time in
microseconds since the run's epoch (wall clock, which every process on this machine shares). The probe
reads it back from the canonical event (`data.samples`) or, for the baseline relay, from the raw OCPP frame,
so no table of sent messages is needed and any number of worker processes can send.
"""

from __future__ import annotations

import bisect
import os
import time
from typing import Any

import orjson

from simulator.model import MARKER_MEASURAND
from simulator.mqtt import Mqtt
from simulator.stats import Histogram


def _marker_in_event(body: Any) -> float | None:
    for sample in body.get("data", {}).get("samples", ()):
        if sample.get("measurand") == MARKER_MEASURAND:
            return float(sample["value"])
    return None


def _marker_in_frame(frame: Any) -> float | None:
    if not isinstance(frame, list) or len(frame) != 4 or not isinstance(frame[3], dict):
        return None
    for meter_value in frame[3].get("meterValue", ()):
        for sample in meter_value.get("sampledValue", ()):
            if sample.get("measurand") == MARKER_MEASURAND:
                return float(sample["value"])
    return None


class LatencyProbe:
    """Histograms of end-to-end latency, one per interval of send time (a throughput stage)."""

    def __init__(self, epoch: float, raw_frames: bool, topic_suffix: str = "/meter_values") -> None:
        self.epoch = epoch
        self.raw_frames = raw_frames  # the relay publishes OCPP frames, the adapter canonical events
        self.topic_suffix = "" if raw_frames else topic_suffix
        self.stage_starts: list[float] = []
        self.stages: list[Histogram] = []
        self.before_stages = Histogram()
        self.messages = 0
        self.unmarked = 0
        self._mqtt: Mqtt | None = None

    async def start(self, url: str, topic_filter: str) -> None:
        self._mqtt = Mqtt(url, f"sim-probe-{os.getpid()}-{time.monotonic_ns()}", self.on_message)
        await self._mqtt.connect()
        await self._mqtt.subscribe(topic_filter, qos=0)

    async def close(self) -> None:
        if self._mqtt is not None:
            await self._mqtt.close()

    def mark(self, start: float) -> Histogram:
        """From this wall time on, messages sent are timed into the returned histogram."""
        histogram = Histogram()
        self.stages.append(histogram)
        self.stage_starts.append(start)
        return histogram

    def on_message(self, topic: str, payload: bytes) -> None:
        received = time.time()
        self.messages += 1
        if not topic.endswith(self.topic_suffix):
            return
        try:
            body = orjson.loads(payload)
            marker = _marker_in_frame(body) if self.raw_frames else _marker_in_event(body)
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError, KeyError):
            marker = None
        if marker is None:
            self.unmarked += 1
            return
        sent = self.epoch + marker / 1e6
        stage = bisect.bisect_right(self.stage_starts, sent) - 1
        (self.stages[stage] if stage >= 0 else self.before_stages).add((received - sent) * 1000.0)
