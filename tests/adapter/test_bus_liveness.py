"""Instance liveness: a crashed or cut-off instance's retained lifecycle claims stop hiding its chargers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import pytest
import websockets

from adapter.bus.client import MqttClient
from adapter.bus.endpoint import parse_endpoint
from adapter.bus.lifecycle import claim_of, lifecycle_event, lost
from adapter.server import shadow_reports
from tests.adapter.events import boot_16
from tests.adapter.test_process import ROOT, wait_listening
from tests.conftest import Broker, MqttProbe, free_port

STATUS = "/devices/lifecycle/adapters/{}"


class Relay:
    """A TCP relay to the broker that can cut every connection through it at once, with no MQTT DISCONNECT:
    to the broker it looks like a crash or a partition."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._transports: list[asyncio.WriteTransport] = []

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for transport in self._transports:
            transport.abort()
        self._transports.clear()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.broker.host, self.broker.port)
        except OSError:
            writer.transport.abort()
            return
        self._transports += [writer.transport, up_writer.transport]
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Polls: what it waits for is the bus's own bookkeeping, which signals nothing."""
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


def claim(cp: str, holder: str, session_id: str = "s-1") -> bytes:
    """A charger's retained lifecycle event naming the instance that holds it."""
    return lifecycle_event(cp, "1.6", holder, session_id, "connected", "connected", "10.0.0.9:4711", None)


def is_status(adapter_id: str, status: str, reason: str | None = None) -> Callable[[str, Any], bool]:
    return lambda t, b: (t == STATUS.format(adapter_id) and b["status"] == status
                         and reason in (None, b["reason"]))


async def test_requests_for_a_cut_off_instances_chargers_get_not_connected_until_it_is_back(
        adapter_factory: Any, probe: MqttProbe, mosquitto: Broker, connect: Any) -> None:
    survivor = await adapter_factory(adapter_id="survivor")
    relay = Relay(mosquitto)
    await relay.open()
    await adapter_factory(adapter_id="victim", mqtt_url=relay.url, local_shadow="off")
    await probe.subscribe(STATUS.format("+"), "res/v1/#")
    await probe.wait_for(is_status("victim", "online", "connected"))
    cp = await connect("cpV")
    await cp.call("BootNotification", boot_16())
    await until(lambda: survivor.ctx.bus.holder_of("cpV") == "victim")

    await relay.cut()  # the victim's MQTT connections die without a DISCONNECT; its chargers stay connected
    await probe.wait_for(is_status("victim", "offline", "connection lost"))
    await probe.publish("req/v1/cpV/DEFAULT/r1/ClearCache", {})
    response = await probe.next_on("res/v1/cpV/DEFAULT/r1/ClearCache")
    assert response["status"] == "not_connected"
    assert survivor.ctx.bus.holder_of("cpV") is None

    await relay.open()  # back: it says online again on reconnecting, and holds its charger again
    await probe.wait_for(is_status("victim", "online", "connected"), timeout=30)
    await until(lambda: survivor.ctx.bus.holder_of("cpV") == "victim")


async def test_a_clean_stop_says_offline_and_leaves_no_status_behind(adapter_factory: Any, probe: MqttProbe,
                                                                     mosquitto: Broker) -> None:
    adapter = await adapter_factory(adapter_id="leaving")
    await probe.subscribe(STATUS.format("+"))
    await probe.wait_for(is_status("leaving", "online", "connected"))
    await adapter.shutdown()
    await probe.wait_for(is_status("leaving", "offline", "stopped"))
    # Without a DISCONNECT the broker publishes the Will as the socket closes, overwriting "stopped" (retained)
    # with "connection lost": a marker published now arrives after any such Will.
    await probe.subscribe("marker/#")
    await probe.client.publish("marker/after-stop", b"{}")
    await probe.next_on("marker/after-stop")
    assert [b["reason"] if b else b for t, b in probe.messages if t == STATUS.format("leaving")] == [
        "connected", "stopped", b""], "online, offline, then the retained status cleared"
    late = MqttClient(parse_endpoint(mosquitto.url), "late-subscriber")
    seen: asyncio.Queue[str] = asyncio.Queue()
    await late.subscribe({STATUS.format("leaving"): lambda t, p: seen.put_nowait(t),
                          "marker/#": lambda t, p: seen.put_nowait(t)})
    late.start()
    try:
        await late.wait_connected(10)
        await probe.client.publish("marker/late", b"{}")  # delivered after any retained message
        async with asyncio.timeout(10):
            assert await seen.get() == "marker/late", "no status of a cleanly stopped instance stays behind"
    finally:
        await late.stop()


async def test_an_instance_started_after_a_crash_knows_the_crashed_one_holds_nothing(
        adapter_factory: Any, probe: MqttProbe) -> None:
    """It finds both retained: the crashed instance's claim and its Will. Should that instance come back
    online, the claim counts again."""
    def status(value: str) -> bytes:
        return orjson.dumps({"adapter_id": "ghost", "status": value, "reason": "test"})

    await probe.client.publish("/devices/lifecycle/cpG", claim("cpG", "ghost"), retain=True)
    await probe.client.publish(STATUS.format("ghost"), status("offline"), retain=True)
    adapter = await adapter_factory()
    # Retained messages come with the SUBACK: once a later message has arrived, so have they.
    await probe.client.publish("/devices/lifecycle/cpLater", claim("cpLater", "other"))
    await until(lambda: adapter.ctx.bus.holder_of("cpLater") == "other")
    assert adapter.ctx.bus.holder_of("cpG") is None
    await probe.client.publish(STATUS.format("ghost"), status("online"), retain=True)
    await until(lambda: adapter.ctx.bus.holder_of("cpG") == "ghost")


def test_adapter_ids_that_would_break_the_status_topic_are_refused() -> None:
    from adapter.bus.bus import Bus, MqttMode
    from adapter.bus.endpoint import parse_endpoint
    from adapter.bus.topics import Topics

    for bad in ("a/b", "a+", "a#"):
        with pytest.raises(ValueError, match="may not contain"):
            Bus(parse_endpoint("mqtt://127.0.0.1:1"), mode=MqttMode.SHARED, adapter_id=bad, topics=Topics())


async def test_a_killed_instances_chargers_get_not_connected(adapter_factory: Any, probe: MqttProbe,
                                                            mosquitto: Broker) -> None:
    """As the reviewer saw it: an instance SIGKILLed while holding a charger."""
    survivor = await adapter_factory(adapter_id="survivor")
    await probe.subscribe(STATUS.format("+"), "res/v1/#")
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "MQTT_URL": mosquitto.url, "WORKERS": "1",
           "STORE_URL": "memory://", "LOG_LEVEL": "warning", "ADAPTER_ID": "killed", "LOCAL_SHADOW": "off"}
    # Popen returns at once (it never waits for the child), so it does not block the loop.
    process = subprocess.Popen([sys.executable, "-m", "adapter", "serve"], cwd=ROOT, env=env,  # noqa: ASYNC220
                               stderr=subprocess.PIPE)
    try:
        await wait_listening(port, process)
        async with websockets.connect(f"ws://127.0.0.1:{port}/ocpp/cpX",
                                      subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            await ws.send(orjson.dumps([2, "b", "BootNotification", boot_16()]).decode())
            assert orjson.loads(await ws.recv())[2]["status"] == "Accepted"
            await until(lambda: survivor.ctx.bus.holder_of("cpX") == "killed")
            process.kill()
            await asyncio.to_thread(process.wait)
    finally:
        if process.poll() is None:
            process.kill()
            await asyncio.to_thread(process.wait)
    await probe.wait_for(is_status("killed", "offline", "connection lost"))
    await probe.publish("req/v1/cpX/DEFAULT/r2/ClearCache", {})
    assert (await probe.next_on("res/v1/cpX/DEFAULT/r2/ClearCache"))["status"] == "not_connected"


def will(adapter_id: str) -> bytes:
    return orjson.dumps({"adapter_id": adapter_id, "status": "offline", "reason": "connection lost"})


def survivor_bus(mosquitto: Broker, adapter_id: str) -> Any:
    from adapter.bus.bus import Bus, MqttMode
    from adapter.bus.topics import Topics

    return Bus(parse_endpoint(mosquitto.url), mode=MqttMode.SHARED, adapter_id=adapter_id, topics=Topics(),
               pool_size=1, status_grace_s=0.2)


async def crashed_holding(probe: MqttProbe, crashed: str, *chargers: str) -> None:
    """What a crash leaves on the broker: its chargers' retained claims and its retained Will."""
    for cp in chargers:
        await probe.client.publish(f"/devices/lifecycle/{cp}", claim(cp, crashed), retain=True)
    await probe.client.publish(STATUS.format(crashed), will(crashed), retain=True)


async def started_bus_sweeping_on_demand(mosquitto: Broker, adapter_id: str) -> Any:
    """A live instance's bus whose own sweep loop (every 60 s with this grace) stays out of the test's way."""
    bus = survivor_bus(mosquitto, adapter_id)
    bus.status_grace_s = 3600.0
    await bus.start()
    return bus


def heard_long_ago(bus: Any, adapter_id: str) -> None:
    """As if the instance's offline status had come a grace period ago (the bus's own sweep is a minute away)."""
    heard, retained = bus._gone[adapter_id]
    bus._gone[adapter_id] = (heard - bus.status_grace_s, retained)


async def test_a_crashed_instances_chargers_that_never_return_are_ended_then_its_will_cleared(
        probe: MqttProbe, mosquitto: Broker) -> None:
    """Ids are new on every start, so each crash's retained Will would stay on the broker for good; and a
    charger that never came back kept a retained 'connected' (and a shadow saying so) for good. A grace period
    after the crash, the charger's session is ended in the crashed instance's name; the Will goes once no
    claim names that instance, and an instance that held nothing loses its Will at once."""
    await probe.subscribe(STATUS.format("+"), "/devices/lifecycle/+", "$aws/things/+/shadow/update")
    held = claim("cpH", "holding")
    await probe.client.publish("/devices/lifecycle/cpH", held, retain=True)
    for adapter_id in ("holding", "empty"):
        await probe.client.publish(STATUS.format(adapter_id), will(adapter_id), retain=True)
    bus = survivor_bus(mosquitto, "survivor")
    await bus.start()
    try:
        await probe.wait_for(lambda t, b: t == STATUS.format("holding") and b == b"")
        order = [t for t, b in probe.messages
                 if b == b"" or (t == "/devices/lifecycle/cpH" and b["data"]["event"] == "disconnected")]
        assert set(order) == {STATUS.format("empty"), "/devices/lifecycle/cpH", STATUS.format("holding")}
        assert order[-1] == STATUS.format("holding"), "the Will goes only after the session it names is ended"
        ended = probe.on("/devices/lifecycle/cpH")[-1]
        assert (ended["adapter_id"], ended["data"]["event"], ended["data"]["reason"]) == (
            "holding", "disconnected", "adapter lost")
        assert (ended["data"]["session_id"], ended["data"]["remote_address"]) == ("s-1", None)
        assert ended["event_id"] == orjson.loads(lost("cpH", claim_of(orjson.loads(held)), "2026-01-01T00:00:00.000Z"))[
            "event_id"], "any instance speaking for that session gives the same event id"
        connection = probe.on("$aws/things/cpH/shadow/update")[-1]["state"]["reported"]["connection"]
        assert (connection["state"], connection["reason"]) == ("disconnected", "adapter lost")
        assert bus.holder_of("cpH") is None
    finally:
        await bus.stop()
        await probe.client.publish("/devices/lifecycle/cpH", b"", retain=True)


async def test_a_charger_back_elsewhere_within_the_grace_period_is_not_ended(probe: MqttProbe,
                                                                             mosquitto: Broker) -> None:
    await probe.subscribe(STATUS.format("+"), "/devices/lifecycle/+")
    await crashed_holding(probe, "crashed", "cpB")
    bus = await started_bus_sweeping_on_demand(mosquitto, "survivor")
    try:
        await probe.client.publish("/devices/lifecycle/cpB", claim("cpB", "survivor", "s-2"), retain=True)
        await until(lambda: bus.holder_of("cpB") == "survivor")
        heard_long_ago(bus, "crashed")
        bus.sweep_statuses()
        await probe.wait_for(lambda t, b: t == STATUS.format("crashed") and b == b"")
        assert [b["data"]["event"] for b in probe.on("/devices/lifecycle/cpB")] == ["connected", "connected"]
    finally:
        await bus.stop()
        await probe.client.publish("/devices/lifecycle/cpB", b"", retain=True)


async def test_one_live_instance_speaks_for_a_crashed_one(probe: MqttProbe, mosquitto: Broker) -> None:
    """The one with the least id among those it knows online: a fleet does not repeat every ended session."""
    await probe.subscribe(STATUS.format("+"), "/devices/lifecycle/+")
    buses = [survivor_bus(mosquitto, name) for name in ("b-2", "a-1")]
    for bus in buses:
        await bus.start()
    try:
        await until(lambda: all({"a-1", "b-2"} <= bus._online for bus in buses))
        await probe.client.publish("/devices/lifecycle/cpZ", claim("cpZ", "ghost"), retain=True)
        await probe.client.publish(STATUS.format("ghost"), will("ghost"), retain=True)
        await probe.wait_for(lambda t, b: t == STATUS.format("ghost") and b == b"")
        await until(lambda: all("ghost" not in bus._gone for bus in buses))
        ended = [b for b in probe.on("/devices/lifecycle/cpZ") if b["data"]["event"] == "disconnected"]
        assert len(ended) == 1
    finally:
        for bus in buses:
            await bus.stop()
        await probe.client.publish("/devices/lifecycle/cpZ", b"", retain=True)


async def test_a_live_session_declared_lost_says_connected_again(adapter_factory: Any, probe: MqttProbe,
                                                                 connect: Any, monkeypatch: pytest.MonkeyPatch,
                                                                 ) -> None:
    """Its instance was only cut off from the broker (or the charger came here as another instance spoke): the
    session announces itself again, under a new event id that de-duplication on event_id keeps."""
    monkeypatch.setattr(shadow_reports, "REPORT_INTERVAL_S", 0.0)  # each report its own update, to tell them apart
    adapter = await adapter_factory(adapter_id="alive")
    await probe.subscribe("/devices/lifecycle/+", "$aws/things/+/shadow/update")
    cp = await connect("cpR", "ocpp1.6")
    await cp.call("BootNotification", boot_16())
    _, first = await probe.wait_for(lambda t, b: t == "/devices/lifecycle/cpR" and b["data"]["event"] == "connected")
    await probe.client.publish("/devices/lifecycle/cpR", lost("cpR", claim_of(first), first["received_at"]),
                               retain=True)
    _, again = await probe.wait_for(lambda t, b: t == "/devices/lifecycle/cpR" and b["data"]["event"] == "connected"
                                    and b["event_id"] != first["event_id"])
    assert (again["adapter_id"], again["data"]["session_id"]) == ("alive", first["data"]["session_id"])
    await until(lambda: adapter.ctx.bus.holder_of("cpR") == "alive")

    def reports() -> list[str]:
        return [b["state"]["reported"]["connection"]["state"] for t, b in probe.messages
                if t == "$aws/things/cpR/shadow/update" and "connection" in b["state"]["reported"]]
    await until(lambda: len(reports()) == 2)
    assert reports() == ["connected", "connected"]


async def test_sessions_of_a_crashed_instance_are_ended_a_bounded_number_per_sweep(
        probe: MqttProbe, mosquitto: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    """On IoT Core the control connection publishes 100 messages a second: thousands of ended sessions at once
    would hold up its own traffic for minutes."""
    import adapter.bus.bus as bus_module

    monkeypatch.setattr(bus_module, "LOST_PER_SWEEP", 1)
    await probe.subscribe(STATUS.format("+"), "/devices/lifecycle/+")
    await crashed_holding(probe, "many", "cpS1", "cpS2")
    bus = await started_bus_sweeping_on_demand(mosquitto, "survivor")

    def ended() -> list[str]:
        return [t for t, b in probe.messages if t.startswith("/devices/lifecycle/cpS") and b
                and b["data"]["event"] == "disconnected"]
    try:
        await until(lambda: "many" in bus._gone and len(bus._holders) == 2)
        heard_long_ago(bus, "many")
        bus.sweep_statuses()
        await until(lambda: len(ended()) == 1)
        assert len(bus._holders) == 1
        bus.sweep_statuses()
        await until(lambda: len(ended()) == 2)
        assert sorted(ended()) == ["/devices/lifecycle/cpS1", "/devices/lifecycle/cpS2"]
        event = probe.on("/devices/lifecycle/cpS1")[-1]
        late = datetime.fromisoformat(event["received_at"]) - datetime.fromisoformat(event["timestamp"])
        assert late.total_seconds() > 3000, "dated when the instance was heard going offline, not when spoken for"
        assert probe.on(STATUS.format("many"))[-1] != b"", "the Will stays until the last session is ended"
        bus.sweep_statuses()
        await probe.wait_for(lambda t, b: t == STATUS.format("many") and b == b"")
    finally:
        await bus.stop()
        for cp in ("cpS1", "cpS2"):
            await probe.client.publish(f"/devices/lifecycle/{cp}", b"", retain=True)


async def test_an_instance_whose_status_was_cleared_is_no_longer_counted_online(probe: MqttProbe,
                                                                               mosquitto: Broker) -> None:
    """A stopped instance clears its status. Counted online for good, with the least id, it would be the one
    to speak for a crashed instance, and nobody would."""
    def online(adapter_id: str) -> bytes:
        return orjson.dumps({"adapter_id": adapter_id, "status": "online", "reason": "connected"})

    await probe.subscribe("/devices/lifecycle/+")
    await probe.client.publish(STATUS.format("aa-stopped"), online("aa-stopped"), retain=True)
    await crashed_holding(probe, "crashed", "cpC")
    bus = await started_bus_sweeping_on_demand(mosquitto, "mm-survivor")
    try:
        await until(lambda: "aa-stopped" in bus._online and bus._holders.get("cpC") is not None)
        heard_long_ago(bus, "crashed")
        bus.sweep_statuses()
        assert bus._holders.get("cpC") is not None, "the least id online speaks, and that is not this one"
        await probe.client.publish(STATUS.format("aa-stopped"), b"", retain=True)
        await until(lambda: "aa-stopped" not in bus._online)
        bus.sweep_statuses()
        await probe.wait_for(lambda t, b: t == "/devices/lifecycle/cpC" and b["data"]["event"] == "disconnected")
    finally:
        await bus.stop()
        for topic in ("/devices/lifecycle/cpC", STATUS.format("crashed")):
            await probe.client.publish(topic, b"", retain=True)


async def test_who_is_online_is_learnt_again_after_a_reconnection(probe: MqttProbe, mosquitto: Broker) -> None:
    """A status cleared while the link was down leaves no message to hear: what the bus counted online before
    is forgotten, and the retained statuses the restored subscription brings say who is."""
    from adapter.bus.bus import Bus, MqttMode
    from adapter.bus.topics import Topics

    relay = Relay(mosquitto)
    await relay.open()
    await probe.subscribe(STATUS.format("+"))
    bus = Bus(parse_endpoint(relay.url), mode=MqttMode.SHARED, adapter_id="rejoining", topics=Topics(), pool_size=1)
    await bus.start()
    try:
        await until(lambda: "rejoining" in bus._online)
        bus._online.add("aa-cleared-meanwhile")
        await relay.cut()
        await relay.open()
        await probe.wait_for(is_status("rejoining", "offline", "connection lost"))
        await until(lambda: bus._online == {"rejoining"}, timeout=30)
    finally:
        await bus.stop()
