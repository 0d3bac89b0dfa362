"""The benchmark's ceiling: a WebSocket-to-MQTT relay that parses nothing.

Every frame a charger sends is published as-is to ``relay/{cp}`` at QoS 1 (awscrt MQTT 5, the library the
adapter uses) and, once the broker acknowledged it, answered with one canned CALLRESULT that satisfies any
request the simulator sends (boot accepted, id tag accepted, transaction 1). Waiting for the PUBACK before
answering matches the adapter's hand-off guarantee, so the comparison is of everything but OCPP work.

    python -m simulator.baseline_relay --port 9100 --mqtt-url mqtt://127.0.0.1:1883 [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal

import uvloop
from awscrt import mqtt5
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from adapter.bus.thread_state import adopt_current_thread
from simulator.mqtt import endpoint

CANNED = (b'{"status":"Accepted","currentTime":"2025-01-01T00:00:00.000Z","interval":300,'
          b'"idTagInfo":{"status":"Accepted"},"idTokenInfo":{"status":"Accepted"},"transactionId":1}')
CALL_PREFIX = b'[2,"'
SUBPROTOCOLS = [Subprotocol(p) for p in ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")]


def canned_result(frame: bytes) -> bytes | None:
    """The CALLRESULT for a CALL, found by position rather than parsing; None for anything else."""
    if not frame.startswith(CALL_PREFIX):
        return None
    end = frame.find(b'"', len(CALL_PREFIX))
    if end < 0:
        return None
    return b'[3,"' + frame[len(CALL_PREFIX):end] + b'",' + CANNED + b"]"


async def _connect(url: str) -> mqtt5.Client:
    """An awscrt MQTT 5 client, connected."""
    loop = asyncio.get_running_loop()
    connected: asyncio.Future[None] = loop.create_future()

    def settle() -> None:
        if not connected.done():
            connected.set_result(None)

    def on_success(_: mqtt5.LifecycleConnectSuccessData) -> None:
        loop.call_soon_threadsafe(settle)

    host, port = endpoint(url)
    client = mqtt5.Client(mqtt5.ClientOptions(
        host_name=host, port=port, connect_options=mqtt5.ConnectPacket(client_id=f"relay-{os.getpid()}"),
        on_lifecycle_event_connection_success_fn=on_success, disable_metrics=True))
    client.start()
    async with asyncio.timeout(10):
        await connected
    return client


def _adopt(_: object) -> None:
    adopt_current_thread()


async def _relay(ws: ServerConnection, mqtt: mqtt5.Client) -> None:
    path = ws.request.path if ws.request else "/"
    topic = f"relay/{path.rsplit('/', 1)[-1]}"
    try:
        while True:
            frame = await ws.recv(decode=False)
            packet = mqtt5.PublishPacket(topic=topic, payload=frame, qos=mqtt5.QoS.AT_LEAST_ONCE)
            published = mqtt.publish(packet)
            published.add_done_callback(_adopt)  # as the adapter does, so only OCPP work differs
            await asyncio.wrap_future(published)
            answer = canned_result(frame)
            if answer is not None:
                await ws.send(answer, text=True)
    except ConnectionClosed:
        pass


async def _serve(port: int, mqtt_url: str) -> None:
    mqtt = await _connect(mqtt_url)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(lambda ws: _relay(ws, mqtt), "127.0.0.1", port, subprotocols=SUBPROTOCOLS,
                     compression=None, max_queue=4, ping_interval=None, reuse_port=True,
                     backlog=4096):  # as the adapter's default --listen-backlog
        await stop.wait()
    mqtt.stop()


def serve_worker(port: int, mqtt_url: str) -> None:
    uvloop.run(_serve(port, mqtt_url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mqtt-url", required=True)
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    others = [context.Process(target=serve_worker, args=(args.port, args.mqtt_url), daemon=True)
              for _ in range(args.workers - 1)]
    for process in others:
        process.start()
    try:
        serve_worker(args.port, args.mqtt_url)
    finally:
        for process in others:
            process.terminate()
            process.join(10)


if __name__ == "__main__":
    main()
