"""OCPP timestamps (RFC 3339) as datetimes."""

from __future__ import annotations

from datetime import datetime


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 allows a lowercase ``t`` and ``z``, which the schemas' date-time check passes and Python's
    ``fromisoformat`` refuses. Raises ValueError for what it still cannot read (a leap second)."""
    return datetime.fromisoformat(text.upper())
