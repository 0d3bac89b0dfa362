"""TCP_NODELAY on the sockets awscrt opens to the broker (awscrt has no option for it)."""

from __future__ import annotations

import os
import socket
from typing import Any

from adapter.bus.nodelay import NodelaySetter
from tests.conftest import Broker


def nodelay(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def test_only_sockets_connected_to_the_broker_are_changed_and_each_once() -> None:
    with socket.create_server(("127.0.0.1", 0)) as broker, socket.create_server(("127.0.0.1", 0)) as other:
        to_broker = socket.create_connection(broker.getsockname())
        to_other = socket.create_connection(other.getsockname())
        with to_broker, to_other:
            assert not nodelay(to_broker)
            setter = NodelaySetter("127.0.0.1", broker.getsockname()[1])
            assert setter.scan() == 1
            assert nodelay(to_broker) and not nodelay(to_other)
            assert setter.scan() == 0  # already seen
            late = socket.create_connection(broker.getsockname())
            with late:
                assert setter.scan() == 1 and nodelay(late)


async def test_the_adapters_mqtt_connections_get_nodelay(adapter: Any, mosquitto: Broker) -> None:
    scan = adapter.ctx.bus.nodelay.scan
    assert scan is not None
    assert await scan >= 1
    assert sockets_to(mosquitto.port) == [True] * len(sockets_to(mosquitto.port))
    assert sockets_to(mosquitto.port)


def sockets_to(port: int) -> list[bool]:
    """TCP_NODELAY of each of this process's sockets connected to 127.0.0.1:port."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=int(name))
        except OSError:
            continue
        try:
            if sock.family is socket.AF_INET and sock.type is socket.SOCK_STREAM:
                try:
                    peer = sock.getpeername()
                except OSError:
                    continue
                if peer == ("127.0.0.1", port):
                    found.append(nodelay(sock))
        finally:
            sock.detach()
    return found
