"""MqttClient over a real broker: when it calls itself connected, what it subscribed to is already live; over
mTLS, the clients of one endpoint share one TLS context."""

from __future__ import annotations

import asyncio
import getpass
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from awscrt import mqtt5

from adapter.bus.client import MqttClient
from adapter.bus.endpoint import parse_endpoint
from adapter.local_broker import listening
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
    conf = tmp_path / "tls.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nuser {getpass.getuser()}\nallow_anonymous true\n"
                    f"cafile {ca.ca_file}\ncertfile {server.cert}\nkeyfile {server.key}\nrequire_certificate true\n")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not listening("127.0.0.1", port):
            assert process.poll() is None and time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)
        yield port, ca, ca.issue("adapter")
    finally:
        process.terminate()
        process.wait(10)


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
