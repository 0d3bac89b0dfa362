"""Reported shadow state: reports merged into few updates without changing the document they leave, and
updates the shadow service rejects followed (sent again when throttled, dropped when they cannot succeed)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest

from adapter.bus.local_shadow import merge
from adapter.observability import names
from adapter.observability.metrics import METRICS
from adapter.server import shadow_reports
from adapter.server.shadow_reports import ShadowReports, compose
from tests.adapter.events import T0, boot_2x, boot_16
from tests.conftest import MqttProbe

SEQUENCES: list[list[dict[str, Any]]] = [
    [{"connection": {"state": "connected", "since": "a"}}, {"vendor": "V"},
     {"connectors": {"1": {"status": "Available"}}}, {"connectors": {"2": {"status": "Faulted"}}},
     {"connectors": {"1": {"status": "Charging", "error_code": None}}}],
    [{"configuration": {"K": 1, "L": [1, 2]}}, {"configuration": {"L": [3]}}, {"configuration": None}],
    [{"a": 5}, {"a": {"b": 1}}, {"a": {"c": None}}, {"a": 7}],
    [{"a": {"x": 1}}, {"a": None}, {"b": 2}],
]


@pytest.mark.parametrize("patches", SEQUENCES)
def test_composed_reports_leave_the_document_each_update_in_turn_would(patches: list[dict[str, Any]]) -> None:
    start = {"a": {"old": 1}, "configuration": {"K": 0, "M": 9}, "connectors": {"3": {"status": "Available"}}}
    in_turn = start
    for patch in patches:
        in_turn = merge(in_turn, patch)
    composed: dict[str, Any] = {}
    for patch in patches:
        assert compose(composed, patch)
    assert merge(start, composed) == in_turn


def test_an_object_where_a_pending_report_deletes_is_not_composed() -> None:
    """Sent as one update, the object would merge into the old value the delete was to remove."""
    base = {"reported": {"a": None, "b": 1}}
    assert not compose(base, {"reported": {"a": {"x": 1}, "b": 2}})
    assert base == {"reported": {"a": None, "b": 1}}  # unchanged: the caller sends it first


class FakeLink:
    charger_id = "cpU"

    def __init__(self) -> None:
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def publish_nowait(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.sent.put_nowait(orjson.loads(payload))


@pytest.fixture
def short_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shadow_reports, "REPORT_INTERVAL_S", 0.001)


async def test_a_report_throttled_every_time_is_dropped_after_the_last_attempt(short_interval: None) -> None:
    link = FakeLink()
    reports = ShadowReports(link, "$aws/things/cpU/shadow/update", "s1")  # type: ignore[arg-type]
    reports.report({"vendor": "V"})
    for _ in range(shadow_reports.MAX_ATTEMPTS - 1):
        sent = await link.sent.get()
        assert sent["state"] == {"reported": {"vendor": "V"}}
        reports.on_rejected("", orjson.dumps({"code": 429, "clientToken": sent["clientToken"]}))
    last = await link.sent.get()
    reports.on_rejected("", orjson.dumps({"code": 429, "clientToken": last["clientToken"]}))
    reports.report({"model": "M"})  # a barrier: anything sent again would come first, or with it
    assert (await link.sent.get())["state"] == {"reported": {"model": "M"}}


async def test_what_waits_goes_out_at_close_and_any_later_report_at_once() -> None:
    link = FakeLink()
    reports = ShadowReports(link, "t", "s1")  # type: ignore[arg-type]
    reports.report({"a": 1})
    reports.report({"b": 2})
    assert link.sent.empty()  # both wait for the interval's end
    reports.close()
    reports.report({"c": 3})
    sent = [await link.sent.get() for _ in range(2)]
    assert [update["state"]["reported"] for update in sent] == [{"a": 1, "b": 2}, {"c": 3}]
    reports.on_rejected("", orjson.dumps({"code": 429, "clientToken": sent[0]["clientToken"]}))
    reports.report({"d": 4})  # anything sent again would come first
    assert (await link.sent.get())["state"]["reported"] == {"d": 4}


async def test_a_whole_session_within_the_interval_is_reported_in_one_update_at_its_end(
        adapter: Any, probe: MqttProbe, connect: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shadow_reports, "REPORT_INTERVAL_S", 60.0)
    await probe.subscribe("$aws/things/cpM/shadow/update", "$aws/things/cpM/shadow/update/documents",
                          "/devices/lifecycle/cpM")
    cp = await connect("cpM", "ocpp2.0.1")
    await cp.call("BootNotification", boot_2x())
    for evse in (1, 2):
        await cp.call("StatusNotification", {"timestamp": T0, "connectorStatus": "Available", "evseId": evse,
                                             "connectorId": 1})
    await probe.next_on("/devices/lifecycle/cpM")  # announced: its shadow report was made with the event
    await cp.close()
    update = await probe.next_on("$aws/things/cpM/shadow/update")
    reported = update["state"]["reported"]
    assert reported["connection"]["state"] == "disconnected" and reported["vendor"] == "Acme"
    assert reported["connection"]["ocpp_version"] == "2.0.1"  # from the connected report, merged under it
    assert set(reported["connectors"]) == {"1", "2"}
    documents = await probe.next_on("$aws/things/cpM/shadow/update/documents")
    assert documents["current"]["version"] == 1  # the shadow took one update
    assert documents["current"]["state"]["reported"]["connectors"]["2"]["status"] == "available"
    assert probe.on("$aws/things/cpM/shadow/update") == []


async def test_reports_within_the_interval_go_out_at_its_end(
        adapter: Any, probe: MqttProbe, connect: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shadow_reports, "REPORT_INTERVAL_S", 0.3)
    await probe.subscribe("$aws/things/cpT/shadow/update")
    cp = await connect("cpT", "ocpp1.6")
    await cp.call("BootNotification", boot_16())
    update = await probe.next_on("$aws/things/cpT/shadow/update")
    assert update["state"]["reported"]["connection"]["state"] == "connected"
    assert update["state"]["reported"]["vendor"] == "Acme"
    assert not cp.ws.close_code  # the session still runs: the interval's end sent it


async def test_a_throttled_report_is_sent_again_and_one_too_large_is_not(
        adapter: Any, probe: MqttProbe, connect: Any, short_interval: None) -> None:
    seen: asyncio.Queue[logging.LogRecord] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "shadow report rejected":
                loop.call_soon_threadsafe(seen.put_nowait, record)

    handler = Seen()
    logging.getLogger(shadow_reports.__name__).addHandler(handler)
    try:
        before = METRICS.counter(names.ERRORS, Kind="shadow")
        rejected = "$aws/things/cpR/shadow/update/rejected"
        await probe.subscribe("$aws/things/cpR/shadow/update")
        cp = await connect("cpR", "ocpp1.6")
        first = await probe.next_on("$aws/things/cpR/shadow/update")
        await probe.publish(rejected, {"code": 429, "message": "Too Many Requests", "clientToken": "not-ours"})
        await probe.publish(rejected, {"code": 429, "message": "Too Many Requests",
                                       "clientToken": first["clientToken"]})
        record = await seen.get()
        assert (record.code, record.retry) == (429, True)  # type: ignore[attr-defined]
        again = await probe.next_on("$aws/things/cpR/shadow/update")
        assert again["state"] == first["state"] and again["clientToken"] != first["clientToken"]

        await probe.publish(rejected, {"code": 413, "message": "The payload exceeds the maximum size allowed",
                                       "clientToken": again["clientToken"]})
        record = await seen.get()
        assert (record.code, record.retry) == (413, False)  # type: ignore[attr-defined]
        await cp.call("BootNotification", boot_16())
        after = await probe.next_on("$aws/things/cpR/shadow/update")
        assert "vendor" in after["state"]["reported"] and "connection" not in after["state"]["reported"]
        assert METRICS.counter(names.ERRORS, Kind="shadow") == before + 2
        assert seen.empty()  # the other writer's rejection was not ours to log
    finally:
        logging.getLogger(shadow_reports.__name__).removeHandler(handler)


async def test_a_malformed_rejection_is_logged_and_changes_nothing(caplog: pytest.LogCaptureFixture,
                                                                   short_interval: None) -> None:
    link = FakeLink()
    reports = ShadowReports(link, "t", "s1")  # type: ignore[arg-type]
    reports.report({"a": 1})
    token = (await link.sent.get())["clientToken"]
    reports.on_rejected("", b"not json")
    reports.on_rejected("", b"[429]")
    reports.on_rejected("", orjson.dumps({"code": {"429": True}, "clientToken": token}))  # ours, but no code
    assert [r.getMessage() for r in caplog.records] == ["malformed shadow rejection ignored"] * 2 + [
        "shadow report rejected"]
    assert caplog.records[-1].retry is False  # type: ignore[attr-defined]
    assert link.sent.empty()


async def test_a_rejection_after_the_wait_is_not_acted_on(short_interval: None, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """The last update is forgotten after ``REJECTION_WAIT_S``: an idle session keeps no payload."""
    monkeypatch.setattr(shadow_reports, "REJECTION_WAIT_S", 0.0)
    link = FakeLink()
    reports = ShadowReports(link, "t", "s1")  # type: ignore[arg-type]
    reports.report({"a": 1})
    token = (await link.sent.get())["clientToken"]
    await asyncio.sleep(0)  # one loop pass: the forgetting is due at once
    reports.on_rejected("", orjson.dumps({"code": 429, "clientToken": token}))
    reports.report({"b": 2})
    assert (await link.sent.get())["state"] == {"reported": {"b": 2}}
    assert not [r for r in caplog.records if r.getMessage() == "shadow report rejected"]


async def test_a_report_the_waiting_update_cannot_take_sends_that_one_first(short_interval: None) -> None:
    link = FakeLink()
    reports = ShadowReports(link, "t", "s1")  # type: ignore[arg-type]
    reports.report({"a": None, "b": 1})
    reports.report({"a": {"x": 1}})  # merged, it would land in the old value of "a" the first deletes
    assert (await link.sent.get())["state"]["reported"] == {"a": None, "b": 1}
    assert (await link.sent.get())["state"]["reported"] == {"a": {"x": 1}}
