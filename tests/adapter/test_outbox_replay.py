"""Outbox replay across a broker outage longer than many PUBACK timeouts: each event reaches a durable
subscriber exactly once, and none is lost."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo.errors import AutoReconnect

from adapter.bus.client import MqttClient
from adapter.bus.endpoint import parse_endpoint
from adapter.local_broker import start_mosquitto
from adapter.store.base import OutboxItem
from tests.adapter.events import T0, boot_16
from tests.conftest import Broker, MqttProbe, free_port

PUBACK_TIMEOUT = 0.3
OUTAGE = 3.0  # ten PUBACK timeouts: the replay used to queue one more copy after each


async def outbox_drained(adapter: Any, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if not await adapter.ctx.store.outbox_pending(10):
                return
            await asyncio.sleep(0.05)


async def copies_of(probe: MqttProbe, topic: str, event_id: str) -> int:
    await asyncio.sleep(1.0)  # copies would follow the first within the reconnect's burst
    return sum(body["event_id"] == event_id for body in probe.on(topic))


async def test_an_outbox_item_is_replayed_once_after_a_long_outage(adapter_factory: Any, probe: MqttProbe,
                                                                   mosquitto: Broker) -> None:
    adapter = await adapter_factory(puback_timeout=PUBACK_TIMEOUT)
    await probe.subscribe("ocpp/#")
    mosquitto.stop()
    body = {"event_id": "ev-outage", "type": "transaction_ended"}
    await adapter.ctx.store.outbox_put(OutboxItem("ev-outage", "ocpp/cpO/transactions", orjson.dumps(body),
                                                  datetime.now(UTC)))
    adapter.ctx.bus.outbox_wakeup.set()
    await asyncio.sleep(OUTAGE)
    mosquitto.restart()
    await probe.wait_for(lambda t, b: b["event_id"] == "ev-outage", timeout=30)
    await outbox_drained(adapter)
    assert await copies_of(probe, "ocpp/cpO/transactions", "ev-outage") == 1


@pytest.mark.parametrize("charger_stays", [True, False], ids=["charger-stays", "charger-leaves"])
async def test_a_late_billing_event_reaches_the_broker_once(adapter_factory: Any, probe: MqttProbe,
                                                            mosquitto: Broker, connect: Any,
                                                            charger_stays: bool) -> None:
    """Its PUBACK is late, so it is written to the outbox, but the session's own publish is still queued: the
    replay waits for that one (charger stays) or publishes it once that one is dropped (charger leaves)."""
    adapter = await adapter_factory(puback_timeout=PUBACK_TIMEOUT)
    await probe.subscribe("ocpp/#")
    cp = await connect("cpL")
    await cp.call("BootNotification", boot_16())
    mosquitto.stop()
    answer = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": T0})
    assert answer[0] == 3, "answered once the event was in the outbox"
    [item] = await adapter.ctx.store.outbox_pending(10)
    if not charger_stays:
        session = adapter.ctx.sessions["cpL"]
        await cp.close()
        await session.finished.wait()
    await asyncio.sleep(OUTAGE)
    mosquitto.restart()
    await probe.wait_for(lambda t, b: b["event_id"] == item.item_id, timeout=30)
    await outbox_drained(adapter)
    assert await copies_of(probe, "ocpp/cpL/transactions", item.item_id) == 1


async def test_an_item_another_instance_replayed_is_forgotten_here(adapter_factory: Any) -> None:
    """Instances share the outbox: one that wrote an item during an outage may find it replayed and deleted by
    another. What it kept to wait for its own late publish must not stay for the life of the process."""
    adapter = await adapter_factory()
    bus, store = adapter.ctx.bus, adapter.ctx.store
    late_publish: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # still queued in awscrt
    item = OutboxItem("ev-elsewhere", "ocpp/cpX/transactions", b"{}", datetime.now(UTC))
    async with bus._replaying:  # this instance's replay is busy while the other one takes the item
        await bus.to_outbox(item, late_publish)
        await store.outbox_delete([item.item_id])
    await bus.replay_outbox()
    assert item.item_id not in bus._earlier


async def test_an_item_the_broker_refuses_does_not_hold_up_the_rest(adapter_factory: Any, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """The replay went in order and stopped at a failed item until it went out: one the broker refuses for good
    (an ACL here, an IoT policy or the payload limit there) held every later billing event of the fleet. It
    now stays in the outbox, tried again on each pass and reported once, and the rest goes out."""
    port = free_port()
    acl = tmp_path / "acl"
    acl.write_text("topic deny ocpp/cpPoison/#\ntopic readwrite #\ntopic readwrite $aws/#\n")
    broker = start_mosquitto(port, extra=(f"acl_file {acl}",))
    try:
        url = f"mqtt://127.0.0.1:{port}"
        adapter = await adapter_factory(mqtt_url=url, local_shadow="off")
        client = MqttClient(parse_endpoint(url), "refusal-probe")
        probe = MqttProbe(client)
        await probe.subscribe("ocpp/#")
        client.start()
        try:
            await client.wait_connected(10)
            store, bus = adapter.ctx.store, adapter.ctx.bus
            for n, (item_id, charger) in enumerate([("ev-1", "cpA"), ("ev-poison", "cpPoison"), ("ev-2", "cpB")]):
                body = orjson.dumps({"event_id": item_id, "type": "transaction_ended"})
                await store.outbox_put(OutboxItem(item_id, f"ocpp/{charger}/transactions", body,
                                                  datetime(2026, 12, 7, 0, 0, n, tzinfo=UTC)))
            bus.outbox_wakeup.set()
            await probe.wait_for(lambda t, b: b["event_id"] == "ev-2")
            assert [b["event_id"] for b in probe.on("ocpp/#")] == ["ev-1", "ev-2"]
            # One pass at a time: this one starts when the pass that sent ev-2 has deleted it.
            assert await bus.replay_outbox() == 0, "tried again, refused again"
            assert [item.item_id for item in await store.outbox_pending(10)] == ["ev-poison"]
            reports = [r for r in caplog.records if r.getMessage().startswith("outbox item refused")]
            assert [(r.item_id, r.topic) for r in reports] == [  # type: ignore[attr-defined]
                ("ev-poison", "ocpp/cpPoison/transactions")], "reported once"
            assert "135" in reports[0].error or "NOT_AUTHORIZED" in reports[0].error  # type: ignore[attr-defined]
        finally:
            await client.stop()
            await adapter.shutdown()  # while its broker still runs
    finally:
        broker.stop()


async def test_the_replay_outlives_a_store_error(adapter_factory: Any, probe: MqttProbe,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A store error in the replay (a MongoDB failover, a locked SQLite file) ended the replay task: nothing
    in the outbox went out again until the process restarted. The pass is now tried again."""
    adapter = await adapter_factory()
    await probe.subscribe("ocpp/#")
    store = adapter.ctx.store
    pending = store.outbox_pending
    failures = [AutoReconnect("primary stepped down"), AutoReconnect("no primary yet")]

    async def failing_twice(limit: int) -> list[OutboxItem]:
        if failures:
            raise failures.pop(0)
        return await pending(limit)
    monkeypatch.setattr(store, "outbox_pending", failing_twice)
    body = {"event_id": "ev-after-failover", "type": "transaction_ended"}
    await store.outbox_put(OutboxItem("ev-after-failover", "ocpp/cpF/transactions", orjson.dumps(body),
                                      datetime.now(UTC)))
    adapter.ctx.bus.outbox_wakeup.set()
    await probe.wait_for(lambda t, b: b["event_id"] == "ev-after-failover")
    assert failures == []
    assert [r.getMessage() for r in caplog.records if "outbox replay failed" in r.getMessage()] == [
        "outbox replay failed; trying again every second"], "once for the episode"


async def without_replay_loop(adapter_factory: Any) -> Any:
    """An adapter whose outbox is replayed only when the test calls for it."""
    adapter = await adapter_factory()
    loops = [t for t in adapter.ctx.bus._tasks if t.get_coro().__name__ == "_replay_loop"]
    assert len(loops) == 1
    loops[0].cancel()
    return adapter


def _items(count: int, prefix: str) -> list[OutboxItem]:
    return [OutboxItem(f"{prefix}-{n:03}", f"ocpp/cp{n % 7}/transactions",
                       orjson.dumps({"event_id": f"{prefix}-{n:03}", "type": "transaction_ended"}),
                       datetime(2026, 12, 7, 0, 0, 0, n, tzinfo=UTC)) for n in range(count)]


async def test_the_replay_keeps_a_window_in_flight_and_deletes_it_at_once(
        adapter_factory: Any, probe: MqttProbe, monkeypatch: pytest.MonkeyPatch) -> None:
    """One item at a time waited a PUBACK round trip and a store delete each: tens a second on IoT Core and
    DocumentDB. Now a window of items is in flight at once, in order, and deleted in one store call."""
    from adapter.bus.bus import REPLAY_WINDOW

    adapter = await without_replay_loop(adapter_factory)
    await probe.subscribe("ocpp/#")
    store, bus = adapter.ctx.store, adapter.ctx.bus
    items = _items(2 * REPLAY_WINDOW + 20, "ev-w")
    for item in items:
        await store.outbox_put(item)
    deletes: list[int] = []
    delete = store.outbox_delete

    async def counted(item_ids: list[str]) -> None:
        deletes.append(len(item_ids))
        await delete(item_ids)
    monkeypatch.setattr(store, "outbox_delete", counted)
    assert await bus.replay_outbox() == len(items)
    await probe.wait_for(lambda t, b: b["event_id"] == items[-1].item_id)
    assert [b["event_id"] for b in probe.on("ocpp/#")] == [item.item_id for item in items], "in order"
    assert deletes == [REPLAY_WINDOW, REPLAY_WINDOW, 20]
    assert await store.outbox_pending(10) == []


async def test_a_failure_in_a_window_keeps_what_did_not_go_out_and_ends_the_pass(
        adapter_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The items PUBACKed around it are deleted; the failed one and every later window wait for the next pass."""
    from adapter.bus.bus import REPLAY_WINDOW
    from adapter.bus.client import MqttUnavailable

    adapter = await without_replay_loop(adapter_factory)
    store, bus = adapter.ctx.store, adapter.ctx.bus
    items = _items(REPLAY_WINDOW + 5, "ev-f")
    for item in items:
        await store.outbox_put(item)
    hand_off = bus._hand_off

    async def no_puback_for_the_tenth(item: OutboxItem) -> None:
        if item.item_id == items[10].item_id:
            raise MqttUnavailable("no PUBACK within the ack timeout")
        await hand_off(item)
    monkeypatch.setattr(bus, "_hand_off", no_puback_for_the_tenth)
    with pytest.raises(MqttUnavailable):
        await bus.replay_outbox()
    left = [item.item_id for item in await store.outbox_pending(100)]
    assert left == [items[10].item_id] + [item.item_id for item in items[REPLAY_WINDOW:]]
    monkeypatch.setattr(bus, "_hand_off", hand_off)
    assert await bus.replay_outbox() == 6
