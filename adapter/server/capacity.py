"""How many chargers one process can hold before it runs out of file descriptors, and the guard at the door.

A charger takes one socket, and in per-charger MQTT mode a second one for its MQTT connection. Past the
open-file limit, accepting more fails somewhere worse than the handshake: a charger admitted but its MQTT
client never connecting, or the store unable to open a file. So the handshake refuses with 503 and a
Retry-After instead, and the charger (or the load balancer) tries again, perhaps another instance.
"""

from __future__ import annotations

import resource

# Descriptors kept for everything that is not a charger: store, logs, the shared pool and control MQTT
# connections, handshakes in progress, the listening sockets.
RESERVED_FILES = 512
_CEILING = 1 << 20  # when the hard limit is "unlimited"


def raise_open_file_limit() -> int:
    """Lift the soft limit to the hard one (shells often start services at 1,024) and return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _CEILING if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return _CEILING if soft == resource.RLIM_INFINITY else soft


def charger_capacity(open_files: int, *, per_charger_mqtt: bool) -> int:
    return max(1, (open_files - RESERVED_FILES) // (2 if per_charger_mqtt else 1))
