"""Canonical event drafts: what a charger message means, before the bus wraps it in the envelope."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TOPIC_OF_TYPE = {
    "status": "status",
    "meter_values": "meter_values",
    "transaction_started": "transactions",
    "transaction_updated": "transactions",
    "transaction_ended": "transactions",
}


@dataclass(slots=True)
class EventDraft:
    type: str
    action: str
    data: dict[str, Any]
    timestamp: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def topic_suffix(self) -> str:
        """Per DESIGN §3: status, meter_values and transactions have their own topics; all else events/{Action}."""
        return TOPIC_OF_TYPE.get(self.type, f"events/{self.action}")

    @property
    def billing(self) -> bool:
        """Billing data must be durably handed off before the charger gets its answer."""
        return self.type.startswith("transaction_") or (
            self.type == "meter_values" and self.data.get("transaction_id") is not None)
