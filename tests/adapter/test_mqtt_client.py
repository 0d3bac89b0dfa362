"""MqttClient over a real broker: when it calls itself connected, what it subscribed to is already live; over
mTLS, the clients of one endpoint share one TLS context."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from awscrt import mqtt5

from adapter.bus import client as client_module
from adapter.bus.client import MqttClient
from adapter.bus.endpoint import parse_endpoint
from adapter.local_broker import start_mosquitto
from adapter.observability import names
from adapter.observability.metrics import METRICS
from tests.conftest import Broker, MqttProbe, free_port
from tests.security.pki import Authority, Issued


async def test_wait_connected_returns_once_earlier_subscriptions_are_live(mosquitto: Broker,
                                                                         probe: MqttProbe) -> None:
    received: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for n in range(5):  # a race, if there were one, would show in some of the rounds
        client = MqttClient(parse_endpoint(mosquitto.url), f"early-subscriber-{n}")
        await client.subscribe({f"early/{n}/+": lambda t, p: received.put_nowait((t, p))})  # before connecting
        client.start()
        try:
            await client.wait_connected(10)
            await probe.client.publish(f"early/{n}/x", b"first")  # PUBACKed: the broker routed it already
            async with asyncio.timeout(10):
                assert await received.get() == (f"early/{n}/x", b"first")
        finally:
            await client.stop()


async def test_stop_before_the_connection_is_made_still_delivers_what_was_published(mosquitto: Broker,
                                                                                       probe: MqttProbe) -> None:
    """A charger that sends one StatusNotification and hangs up ends its session before its per-charger
    client has its CONNACK: the event must still reach the broker."""
    await probe.subscribe("quick/#")
    client = MqttClient(parse_endpoint(mosquitto.url), "quick-leaver")
    client.start()
    delivered = client.publish("quick/status", b"available")
    assert not client.connected
    await client.stop()
    await delivered
    assert (await probe.next_on("quick/status")) == b"available"


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[int, Authority, Issued]]:
    """Mosquitto with only an mTLS listener: clients must present a certificate of the test CA."""
    ca = Authority(tmp_path)
    server = ca.issue("127.0.0.1", server=True)
    port = free_port()
    broker = start_mosquitto(port, extra=(f"cafile {ca.ca_file}", f"certfile {server.cert}",
                                          f"keyfile {server.key}", "require_certificate true"))
    try:
        yield port, ca, ca.issue("adapter")
    finally:
        broker.stop()


async def test_clients_of_one_endpoint_share_one_tls_context(tls_broker: tuple[int, Authority, Issued],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-charger mode makes a client per charger: the certificate files are read and parsed once."""
    port, ca, identity = tls_broker
    contexts = []
    make_client = mqtt5.Client

    def spy(options: mqtt5.ClientOptions) -> mqtt5.Client:
        contexts.append(options.tls_ctx)
        return make_client(options)
    monkeypatch.setattr(mqtt5, "Client", spy)
    endpoint = parse_endpoint(f"mqtts://127.0.0.1:{port}?ca={ca.ca_file}&cert={identity.cert}&key={identity.key}")
    clients = [MqttClient(endpoint, f"tls-{n}") for n in range(2)]
    assert contexts[0] is not None and contexts[0] is contexts[1]
    received: asyncio.Queue[bytes] = asyncio.Queue()
    try:
        await clients[0].subscribe({"tls/x": lambda t, p: received.put_nowait(p)})
        for client in clients:
            client.start()
            await client.wait_connected(10)
        await clients[1].publish("tls/x", b"over mTLS")
        async with asyncio.timeout(10):
            assert await received.get() == b"over mTLS"
    finally:
        for client in clients:
            await client.stop()


Failure = Callable[[list[str], Callable[[list[str]], "Future[mqtt5.SubackPacket]"]], "Future[mqtt5.SubackPacket]"]


def _failing_first(client: MqttClient, failure: Failure) -> list[list[str]]:
    """``client``'s first SUBSCRIBE ends as ``failure`` makes it; later ones go out as they are."""
    sent: list[list[str]] = []
    real = client._send_subscribe

    def send(filters: list[str]) -> Future[mqtt5.SubackPacket]:
        sent.append(filters)
        return failure(filters, real) if len(sent) == 1 else real(filters)
    client._send_subscribe = send  # type: ignore[method-assign]
    return sent


def _timed_out(filters: list[str], real: Callable[[list[str]], Future[mqtt5.SubackPacket]]
               ) -> Future[mqtt5.SubackPacket]:
    """No SUBACK in time: the broker never saw it."""
    future: Future[mqtt5.SubackPacket] = Future()
    future.set_exception(RuntimeError("AWS_ERROR_MQTT_TIMEOUT"))
    return future


def _refusing(code: mqtt5.SubackReasonCode) -> Failure:
    """The first filter granted, the others refused with ``code`` (Mosquitto 2.0 grants every subscription and
    applies its ACL at delivery, so no broker here refuses one)."""
    def failure(filters: list[str], real: Callable[[list[str]], Future[mqtt5.SubackPacket]]
                ) -> Future[mqtt5.SubackPacket]:
        future: Future[mqtt5.SubackPacket] = Future()

        def answered(granted: Future[mqtt5.SubackPacket]) -> None:
            codes = list(granted.result().reason_codes or [])
            future.set_result(mqtt5.SubackPacket(reason_codes=[*codes, *[code] * (len(filters) - 1)]))
        real(filters[:1]).add_done_callback(answered)
        return future
    return failure


@pytest.mark.parametrize(("failure", "retried"), [(_timed_out, ["restore/a", "restore/b"]),
                                                   (_refusing(mqtt5.SubackReasonCode.QUOTA_EXCEEDED), ["restore/b"])])
async def test_a_failed_restore_is_tried_again_on_the_same_connection(
        mosquitto: Broker, probe: MqttProbe, monkeypatch: pytest.MonkeyPatch,
        failure: Failure, retried: list[str]) -> None:
    """A SUBSCRIBE can fail with the link up (no SUBACK within the acknowledgement timeout, a broker's
    subscribe quota): left at that, the client never became usable and no session on it announced its
    charger. What failed is subscribed again, with the connection kept."""
    monkeypatch.setattr(client_module, "RESTORE_RETRY_S", 0.05)
    received: asyncio.Queue[str] = asyncio.Queue()
    client = MqttClient(parse_endpoint(mosquitto.url), "restorer")
    await client.subscribe({"restore/a": lambda t, p: received.put_nowait(t),
                            "restore/b": lambda t, p: received.put_nowait(t)})
    sent = _failing_first(client, failure)
    reconnects_before = METRICS.counter(names.MQTT_RECONNECTS)
    client.start()
    try:
        await client.wait_connected(10)
        assert sent == [["restore/a", "restore/b"], retried]
        for topic in ("restore/a", "restore/b"):
            await probe.client.publish(topic, b"x")
            async with asyncio.timeout(10):
                assert await received.get() == topic
        assert METRICS.counter(names.MQTT_RECONNECTS) == reconnects_before
    finally:
        await client.stop()


async def test_a_restore_cut_short_by_stop_is_not_reported(mosquitto: Broker,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A session replaced while its per-charger client was still subscribing stops that client, and the
    SUBSCRIBE fails with it: that is no failure to report or retry (the suite's one "not restored" warning)."""
    client = MqttClient(parse_endpoint(mosquitto.url), "stopped-restorer")
    await client.subscribe({"cut/x": lambda t, p: None})
    held: Future[mqtt5.SubackPacket] = Future()
    restoring = asyncio.Event()

    def send(filters: list[str]) -> Future[mqtt5.SubackPacket]:
        restoring.set()
        return held
    client._send_subscribe = send  # type: ignore[method-assign]
    client.start()
    async with asyncio.timeout(10):
        await restoring.wait()
    await client.stop()
    held.set_exception(RuntimeError("AWS_ERROR_MQTT5_OPERATION_FAILED_DUE_TO_OFFLINE_QUEUE_POLICY"))
    handled = asyncio.Event()
    client._hop.call(handled.set)  # after the SUBSCRIBE's outcome, which the same hop carries
    async with asyncio.timeout(10):
        await handled.wait()
    assert [r for r in caplog.records if "not restored" in r.getMessage()] == []


async def test_a_refused_subscription_is_logged_and_the_rest_is_live(
        mosquitto: Broker, probe: MqttProbe, caplog: pytest.LogCaptureFixture) -> None:
    """Trying again cannot help a filter the broker is not allowed to grant (an IoT policy that does not list
    it): the refusal is logged with the filter, and the client is usable with what was granted."""
    received: asyncio.Queue[str] = asyncio.Queue()
    client = MqttClient(parse_endpoint(mosquitto.url), "refused")
    await client.subscribe({"allowed/x": lambda t, p: received.put_nowait(t),
                            "denied/x": lambda t, p: received.put_nowait(t)})
    sent = _failing_first(client, _refusing(mqtt5.SubackReasonCode.NOT_AUTHORIZED))
    client.start()
    try:
        await client.wait_connected(10)
        assert sent == [["allowed/x", "denied/x"]], "not tried again"
        refusals = [r.refused for r in caplog.records  # type: ignore[attr-defined]
                    if r.getMessage() == "broker refused subscriptions"]
        assert refusals == [[("denied/x", "NOT_AUTHORIZED")]]
        await probe.client.publish("allowed/x", b"x")
        async with asyncio.timeout(10):
            assert await received.get() == "allowed/x"
    finally:
        await client.stop()


async def test_a_subscribe_goes_out_in_packets_of_at_most_eight_filters(mosquitto: Broker, probe: MqttProbe) -> None:
    """AWS IoT Core refuses a SUBSCRIBE of more than 8 topic filters, and a shared-mode pool connection restores
    3 per charger after a reconnect, all at once."""
    received: asyncio.Queue[str] = asyncio.Queue()
    client = MqttClient(parse_endpoint(mosquitto.url), "many-filters")
    filters = [f"many/{n}" for n in range(20)]
    await client.subscribe(dict.fromkeys(filters[:17], lambda t, p: received.put_nowait(t)))  # before connecting
    sizes: list[int] = []
    real = client._client.subscribe

    def spy(packet: mqtt5.SubscribePacket) -> Future[mqtt5.SubackPacket]:
        sizes.append(len(packet.subscriptions))
        sent: Future[mqtt5.SubackPacket] = real(packet)
        return sent
    client._client.subscribe = spy
    client.start()
    try:
        await client.wait_connected(10)
        await client.subscribe(dict.fromkeys(filters[17:], lambda t, p: received.put_nowait(t)))
        assert sizes == [8, 8, 1, 3]
        for topic in filters:
            await probe.client.publish(topic, b"x")
        async with asyncio.timeout(10):
            assert sorted([await received.get() for _ in filters]) == sorted(filters)
    finally:
        await client.stop()


async def test_one_failed_packet_of_a_split_subscribe_fails_the_whole_and_it_is_tried_again(
        mosquitto: Broker, probe: MqttProbe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "RESTORE_RETRY_S", 0.05)
    received: asyncio.Queue[str] = asyncio.Queue()
    client = MqttClient(parse_endpoint(mosquitto.url), "split-failure")
    filters = [f"split/{n}" for n in range(10)]
    await client.subscribe(dict.fromkeys(filters, lambda t, p: received.put_nowait(t)))
    sizes: list[int] = []
    real = client._client.subscribe

    def second_fails_once(packet: mqtt5.SubscribePacket) -> Future[mqtt5.SubackPacket]:
        sizes.append(len(packet.subscriptions))
        sent: Future[mqtt5.SubackPacket] = _timed_out([], real) if len(sizes) == 2 else real(packet)
        return sent
    client._client.subscribe = second_fails_once
    client.start()
    try:
        await client.wait_connected(10)
        assert sizes == [8, 2, 8, 2]
        await probe.client.publish("split/9", b"x")
        async with asyncio.timeout(10):
            assert await received.get() == "split/9"
    finally:
        await client.stop()


@pytest.mark.parametrize(("url", "iot_core"), [
    ("mqtts://a1b2c3-ats.iot.eu-west-1.amazonaws.com:8883", True),
    ("wss-sigv4://a1b2c3-ats.iot.eu-west-1.amazonaws.com?region=eu-west-1", True),
    ("mqtt://127.0.0.1:1883", False), ("mqtts://broker.example.com:8883", False),
])
async def test_iot_core_endpoints_get_awscrts_iot_core_validation_and_pacing(
        url: str, iot_core: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """awscrt then paces publishes to IoT Core's 100 a second per connection and fails what it would refuse."""
    endpoint = parse_endpoint(url)
    assert endpoint.is_iot_core is iot_core
    options: list[mqtt5.ClientOptions] = []
    make_client = mqtt5.Client

    def spy(given: mqtt5.ClientOptions) -> mqtt5.Client:
        options.append(given)
        return make_client(given)
    monkeypatch.setattr(mqtt5, "Client", spy)
    MqttClient(endpoint, "paced")  # never started
    assert options[0].extended_validation_and_flow_control_options == (
        mqtt5.ExtendedValidationAndFlowControlOptions.AWS_IOT_CORE_DEFAULTS if iot_core
        else mqtt5.ExtendedValidationAndFlowControlOptions.NONE)


async def test_shared_mode_on_iot_core_warns_of_its_ceiling(caplog: pytest.LogCaptureFixture) -> None:
    """IoT Core allows a connection 100 publishes a second and 50 subscriptions (a fixed and a default quota): a
    pool of 2 carries at most 200 msg/s and 24 chargers, which an operator must hear before the fleet grows."""
    from adapter.bus.bus import Bus, MqttMode
    from adapter.bus.topics import Topics

    bus = Bus(parse_endpoint("mqtts://a1b2c3-ats.iot.eu-west-1.amazonaws.com.invalid:8883"), mode=MqttMode.SHARED,
              adapter_id="ceiling", topics=Topics(), pool_size=2)
    try:
        with pytest.raises(TimeoutError):  # no such broker here
            await bus.start(connect_timeout=0.2)
    finally:  # not bus.stop(): it would wait 5 s for its "offline" status to reach the broker that is not there
        await asyncio.gather(*(client.stop(drain_timeout=0.1) for client in [*bus._pool, bus.control]))
    assert [r.getMessage() for r in caplog.records if "IoT Core" in r.getMessage()] == [
        "shared MQTT mode on AWS IoT Core: each connection may publish 100 messages a second and hold 50 "
        "subscriptions (4 per charger), so this process's pool carries at most 200 msg/s and 24 chargers; "
        "per-charger mode has no such ceiling"]


async def test_a_packet_awscrt_refuses_fails_like_any_other_publish() -> None:
    """awscrt checks a packet as it takes it, and raised there (a wildcard in a topic; on IoT Core, a topic over
    256 bytes): raised into a session, that failed the charger's message, and in the outbox replay it would
    have ended the replay task. A packet over the broker's maximum size fails later, in validation too. Both
    now fail as refused, which the outbox replay steps over instead of waiting as for an outage."""
    port = free_port()
    broker = start_mosquitto(port, extra=("max_packet_size 1000",))
    try:
        client = MqttClient(parse_endpoint(f"mqtt://127.0.0.1:{port}"), "refused-packet")
        client.start()
        failures: asyncio.Queue[Exception] = asyncio.Queue()
        try:
            await client.wait_connected(10)
            with pytest.raises(client_module.MqttRefused, match="PUBLISH_OPTIONS_VALIDATION"):
                await client.publish("bad/#", b"x")
            with pytest.raises(client_module.MqttRefused, match="PACKET_VALIDATION"):
                await client.publish("big/x", b"x" * 2000)
            client.publish_nowait("bad/+", b"x", failures.put_nowait)
            async with asyncio.timeout(10):
                assert isinstance(await failures.get(), client_module.MqttRefused)
            await client.publish("good/x", b"x")  # the client goes on
        finally:
            await client.stop()
    finally:
        broker.stop()
