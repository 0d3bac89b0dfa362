"""Everything a session needs from the process, gathered once at start-up."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapter.bus.bus import Bus
from adapter.config import Settings
from adapter.csms.central_system import CentralSystem
from adapter.security.limits import TokenBucket
from adapter.security.provisioning import ThingProvisioner
from adapter.store.async_store import AsyncStore

if TYPE_CHECKING:
    from adapter.server.session import ChargerSession


@dataclass
class AdapterContext:
    settings: Settings
    csms: CentralSystem
    store: AsyncStore
    bus: Bus
    spawn: Callable[[Coroutine[Any, Any, Any]], None]
    rate_limiter: Callable[[], TokenBucket]
    provisioner: ThingProvisioner | None = None
    sessions: dict[str, ChargerSession] = field(default_factory=dict)
    ready: bool = False

    @property
    def adapter_id(self) -> str:
        return self.settings.adapter_id
