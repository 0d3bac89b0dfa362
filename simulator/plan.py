"""Which chargers a run simulates: ids, OCPP versions, connector counts, source addresses, worker shares."""

from __future__ import annotations

import ipaddress
import re

from simulator.model import VERSIONS, ChargerSpec

_ID_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def parse_mix(text: str, allowed: tuple[str, ...] | None = None) -> dict[str, float]:
    """'1.6=50,2.0.1=40,2.1=10' -> shares; a bare '2' means 100% of that value."""
    shares: dict[str, float] = {}
    for part in text.split(","):
        key, _, weight = part.strip().partition("=")
        key = key.strip()
        if allowed is not None and key not in allowed:
            raise ValueError(f"unknown value {key!r} (expected one of {', '.join(allowed)})")
        shares[key] = float(weight) if weight else 1.0
        if shares[key] < 0:
            raise ValueError(f"negative share for {key!r}")
    if not shares or sum(shares.values()) <= 0:
        raise ValueError(f"empty mix: {text!r}")
    return shares


def interleave(shares: dict[str, float], count: int) -> list[str]:
    """Proportional, deterministic assignment (smooth weighted round robin), evenly spread over the list."""
    total = sum(shares.values())
    credit = dict.fromkeys(shares, 0.0)
    out = []
    for _ in range(count):
        for key, weight in shares.items():
            credit[key] += weight
        chosen = max(credit, key=lambda k: credit[k])
        credit[chosen] -= total
        out.append(chosen)
    return out


def source_addresses(text: str | None) -> list[str]:
    """'127.0.0.1,127.0.0.2' or a count N meaning 127.0.0.1 .. 127.0.0.N."""
    if not text:
        return []
    if text.isdigit():
        first = ipaddress.IPv4Address("127.0.0.1")
        return [str(first + n) for n in range(int(text))]
    return [str(ipaddress.ip_address(part.strip())) for part in text.split(",")]


def fleet(run_id: str, count: int, mix: dict[str, float], connectors: dict[str, float],
          addresses: list[str]) -> list[ChargerSpec]:
    if not _ID_SAFE.match(run_id):
        raise ValueError("run id may only contain letters, digits, '.', '_' and '-'")
    versions = interleave(mix, count)
    for version in set(versions):
        if version not in VERSIONS:
            raise ValueError(f"unsupported OCPP version {version!r}")
    sizes = interleave(connectors, count)
    return [ChargerSpec(charger_id=f"sim-{run_id}-{n}", version=versions[n], connectors=int(sizes[n]),
                        source_address=addresses[n % len(addresses)] if addresses else None)
            for n in range(count)]


def split(specs: list[ChargerSpec], processes: int) -> list[list[ChargerSpec]]:
    """Deal chargers round-robin so every worker gets the same mix."""
    return [specs[i::processes] for i in range(processes) if specs[i::processes]]
