"""``python -m adapter serve`` as a process: workers sharing the port, clean shutdown with 1001."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import websockets

from tests.adapter.events import boot_16
from tests.conftest import Broker, MqttProbe, free_port

ROOT = Path(__file__).resolve().parents[2]


async def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    async with asyncio.timeout(30):
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return


@pytest.fixture
async def served(mosquitto: Broker, tmp_path: Path) -> AsyncIterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "MQTT_URL": mosquitto.url, "WORKERS": "2",
           "STORE_URL": f"sqlite:///{tmp_path}/store.db", "LOG_LEVEL": "warning", "ADAPTER_ID": "proc"}
    # Popen returns at once (it never waits for the child), so it does not block the loop.
    process = subprocess.Popen([sys.executable, "-m", "adapter", "serve"], cwd=ROOT, env=env,  # noqa: ASYNC220
                               stderr=subprocess.PIPE)
    await wait_listening(port, process)
    yield port, process
    if process.poll() is None:
        process.kill()
        process.wait()


async def test_workers_share_the_port_and_shut_down_cleanly(served: tuple[int, subprocess.Popen[bytes]],
                                                            probe: MqttProbe) -> None:
    port, process = served
    await probe.subscribe("/devices/lifecycle/+")
    chargers = []
    holders: set[str] = set()
    # The second worker may still be binding when the first accepts: connect until both hold chargers.
    async with asyncio.timeout(30):
        while holders != {"proc-w0", "proc-w1"}:
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/ocpp/W{len(chargers)}",
                                          subprotocols=["ocpp1.6"])  # type: ignore[list-item]
            await ws.send(orjson.dumps([2, "b", "BootNotification", boot_16()]).decode())
            assert orjson.loads(await ws.recv())[2]["status"] == "Accepted"
            chargers.append(ws)
            await probe.wait_for(lambda t, b: len(probe.on("/devices/lifecycle/+")) >= len(chargers))
            holders = {b["adapter_id"] for b in probe.on("/devices/lifecycle/+")}
            assert holders <= {"proc-w0", "proc-w1"}, holders
    process.send_signal(signal.SIGTERM)
    for ws in chargers:
        await ws.wait_closed()
        assert (ws.close_code, ws.close_reason) == (1001, "adapter shutting down")
    assert await asyncio.to_thread(process.wait, 30) == 0
