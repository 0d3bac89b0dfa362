"""A small asyncio MQTT 3.1.1 client for the simulator's instruments (latency probe, back end).

Why not awscrt, which the adapter and the relay use: awscrt 0.36 cannot set TCP_NODELAY, and a client that
publishes right after acknowledging a message then waits out the broker's delayed ACK (Nagle; ~20-40 ms).
An instrument must not add that to what it measures. asyncio sets TCP_NODELAY on its TCP transports, and
this client needs no threads: messages are handled on the event loop as they are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

OnMessage = Callable[[str, bytes], None]

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 1, 2, 3, 4, 8, 9, 12, 13, 14
KEEP_ALIVE_S = 60


def endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"expected mqtt://host:port, got {url!r}")
    return parts.hostname, parts.port or 1883


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    length, size = bytearray(), len(body)
    while True:
        size, digit = divmod(size, 128)
        length.append(digit | (0x80 if size else 0))
        if not size:
            break
    return bytes([kind << 4 | flags]) + bytes(length) + body


class MqttError(ConnectionError):
    pass


class Mqtt:
    def __init__(self, url: str, client_id: str, on_message: OnMessage | None = None) -> None:
        self.host, self.port = endpoint(url)
        self.client_id = client_id
        self.on_message = on_message
        self._ids = itertools.cycle(range(1, 65536))
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            reader, self._writer = await asyncio.open_connection(self.host, self.port)
            body = _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", KEEP_ALIVE_S) + _string(self.client_id)
            self._writer.write(_packet(CONNECT, 0, body))
            kind, _, ack = await self._read(reader)
            if kind != CONNACK or ack[1] != 0:
                raise MqttError(f"connection refused by {self.host}:{self.port} (code {ack[1:2].hex()})")
        self._tasks = [asyncio.create_task(self._receive(reader)), asyncio.create_task(self._keep_alive())]

    async def subscribe(self, *topic_filters: str, qos: int = 1) -> None:
        packet_id = next(self._ids)
        body = struct.pack("!H", packet_id) + b"".join(_string(f) + bytes([qos]) for f in topic_filters)
        await self._acknowledged(packet_id, _packet(SUBSCRIBE, 0x02, body))

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> asyncio.Future[None]:
        """The future completes on PUBACK (QoS 1) or at once (QoS 0)."""
        if qos == 0:
            self._write(_packet(PUBLISH, 0, _string(topic) + payload))
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        packet_id = next(self._ids)
        return asyncio.ensure_future(self._acknowledged(
            packet_id, _packet(PUBLISH, 0x02, _string(topic) + struct.pack("!H", packet_id) + payload)))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._writer is not None:
            with contextlib.suppress(ConnectionError):
                self._writer.write(_packet(DISCONNECT, 0, b""))
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    def _write(self, data: bytes) -> None:
        if self._writer is None or self._writer.is_closing():
            raise MqttError("not connected")
        self._writer.write(data)

    async def _acknowledged(self, packet_id: int, data: bytes) -> None:
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks[packet_id] = ack
        self._write(data)
        await ack

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
        first = (await reader.readexactly(1))[0]
        size, shift = 0, 0
        while True:
            digit = (await reader.readexactly(1))[0]
            size |= (digit & 0x7F) << shift
            shift += 7
            if not digit & 0x80:
                break
        return first >> 4, first & 0x0F, await reader.readexactly(size)

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                kind, flags, body = await self._read(reader)
                if kind == PUBLISH:
                    self._on_publish(flags, body)
                elif kind in (PUBACK, SUBACK):
                    ack = self._acks.pop(struct.unpack_from("!H", body)[0], None)
                    if ack is not None and not ack.done():
                        ack.set_result(None)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            for ack in self._acks.values():
                if not ack.done():
                    ack.set_exception(MqttError(f"connection lost: {error!r}"))
            self._acks.clear()

    def _on_publish(self, flags: int, body: bytes) -> None:
        size = struct.unpack_from("!H", body)[0]
        topic, offset = body[2:2 + size].decode(), 2 + size
        if (flags >> 1) & 0x03:
            self._write(_packet(PUBACK, 0, body[offset:offset + 2]))
            offset += 2
        if self.on_message is not None:
            self.on_message(topic, body[offset:])

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(KEEP_ALIVE_S / 2)
            self._write(_packet(PINGREQ, 0, b""))
