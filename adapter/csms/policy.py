"""How the built-in central system decides: boot registration, token authorization, delegation."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class BootPolicy(enum.StrEnum):
    ACCEPT = "accept"
    PENDING = "pending"
    REJECT = "reject"


class AuthPolicy(enum.StrEnum):
    ACCEPT_ALL = "accept-all"
    LOCAL = "local"
    DELEGATE = "delegate"


@dataclass(frozen=True, slots=True)
class CsmsPolicy:
    heartbeat_interval: int = 300
    boot: BootPolicy = BootPolicy.ACCEPT
    auth: AuthPolicy = AuthPolicy.ACCEPT_ALL
    delegate_data_transfer: bool = False
    delegate_timeout_s: float = 2.0
    # Real 1.6 chargers often send Heartbeat/StatusNotification before their boot is accepted.
    v16_tolerate_preboot: bool = True
