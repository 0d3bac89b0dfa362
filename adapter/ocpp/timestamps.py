"""OCPP timestamps (RFC 3339) as datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 allows a lowercase ``t`` and ``z``, which the schemas' date-time check passes and Python's
    ``fromisoformat`` refuses. Raises ValueError for what it still cannot read (a leap second)."""
    return datetime.fromisoformat(text.upper())


def iso(moment: datetime) -> str:
    """As the envelope and the answers to chargers write times: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(datetime.now(UTC))
