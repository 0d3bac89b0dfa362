"""The local run's Mosquitto keeps serving after it has logged far more than a pipe holds, and leaves nothing
behind when it stops."""

from __future__ import annotations

import socket
from pathlib import Path

from adapter.local_broker import start_mosquitto
from tests.conftest import free_port

PIPE_CAPACITY = 64 * 1024


def connect_packet(client_id: str) -> bytes:
    """An MQTT 3.1.1 CONNECT with a clean session and a 60 s keepalive."""
    ident = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(ident).to_bytes(2, "big") + ident
    return bytes([0x10, len(body)]) + body


def connack(port: int, client_id: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(connect_packet(client_id))
        return sock.recv(4)


def test_the_broker_answers_after_logging_more_than_a_pipe_holds(tmp_path: Path) -> None:
    port = free_port()
    broker = start_mosquitto(port, tmp_path)
    try:
        client_id = "c" * 60  # every connect and disconnect logs it: about 400 bytes per client
        for _ in range(PIPE_CAPACITY // 300):
            assert connack(port, client_id) == b"\x20\x02\x00\x00"
        assert connack(port, "last") == b"\x20\x02\x00\x00"
        assert (broker.workdir / "mosquitto.log").stat().st_size > PIPE_CAPACITY
    finally:
        broker.stop()
    assert broker.process.returncode is not None
    assert not broker.workdir.exists()
