"""The canonical envelope's times are UTC whatever offset the charger used."""

import pytest

from adapter.bus.envelope import Origin, envelope, utc
from adapter.normalize.events import EventDraft


@pytest.mark.parametrize(("sent", "expected"), [
    ("2024-06-01T12:00:00Z", "2024-06-01T12:00:00Z"),
    ("2024-06-01T12:00:00.250+02:00", "2024-06-01T10:00:00.250000Z"),
    ("2024-06-01T01:00:00-05:30", "2024-06-01T06:30:00Z"),
    ("2024-06-01t12:00:00z", "2024-06-01T12:00:00Z"),  # RFC 3339 allows lowercase; now in one spelling
    ("2016-12-31t23:59:60z", "2016-12-31t23:59:60z"),  # a leap second Python cannot read: passed on as sent
])
def test_charger_offsets_become_utc(sent: str, expected: str) -> None:
    assert utc(sent) == expected


def test_the_envelope_timestamp_is_utc_and_received_at_fills_a_missing_one() -> None:
    origin = Origin("cp1", "2.0.1", "a1", "2024-06-01T10:00:01.000Z", b"[]")
    stamped = envelope(EventDraft("status", "StatusNotification", {}, "2024-06-01T12:00:00+02:00"), origin, 0, [])
    assert stamped["timestamp"] == "2024-06-01T10:00:00Z"
    unstamped = envelope(EventDraft("status", "StatusNotification", {}), origin, 0, [])
    assert unstamped["timestamp"] == origin.received_at
