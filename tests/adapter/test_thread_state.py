"""awscrt's threads keep the Python thread state they enter with, instead of one made and freed per callback."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from adapter.bus import client as client_module
from adapter.bus.client import MqttClient
from adapter.bus.endpoint import parse_endpoint
from tests.conftest import Broker


def _recording(adopt: Callable[[], None], seen: list[tuple[int, object]]) -> Callable[[], None]:
    """Wraps the adoption hook: notes whether this awscrt thread still holds what it stored in its
    thread-local state during an earlier callback (a thread state made afresh would have lost it)."""
    local = threading.local()

    def hook() -> None:
        adopt()
        seen.append((threading.get_ident(), getattr(local, "mark", None)))
        local.mark = "kept"
    return hook


async def _publish_some(mosquitto: Broker, count: int) -> None:
    client = MqttClient(parse_endpoint(mosquitto.url), "thread-state")
    client.start()
    try:
        await client.wait_connected(10)
        for n in range(count):
            await client.publish(f"thread-state/{n}", b"x")  # one PUBACK callback each, in turn
    finally:
        await client.stop()


async def test_puback_callbacks_reuse_one_thread_state(mosquitto: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, object]] = []
    monkeypatch.setattr(client_module, "adopt_current_thread", _recording(client_module.adopt_current_thread, seen))
    await _publish_some(mosquitto, 5)
    assert len(seen) == 5
    assert threading.get_ident() not in {ident for ident, _ in seen}  # they ran on awscrt's thread
    # Without the adoption every mark reads None: CPython frees a foreign thread's state (and its mmapped
    # frame stack) each time the callback returns. (Not a test of its own: the thread, once adopted by any
    # earlier test, stays adopted for the whole run.)
    assert [mark for _, mark in seen] == [None, "kept", "kept", "kept", "kept"]

