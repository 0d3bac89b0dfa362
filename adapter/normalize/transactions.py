"""What a session remembers about open transactions, so later messages that omit it still normalize fully."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapter.ocpp.versions import Version


@dataclass(slots=True)
class OpenTransaction:
    transaction_id: str
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    meter_start_wh: float | None
    charging_state: str | None = None  # 2.x: the last one reported, so a repeat is not an update


class TransactionBook:
    def __init__(self) -> None:
        self._open: dict[str, OpenTransaction] = {}

    def open(self, tx: OpenTransaction) -> None:
        self._open[tx.transaction_id] = tx

    def get(self, transaction_id: str) -> OpenTransaction | None:
        return self._open.get(transaction_id)

    def close(self, transaction_id: str) -> OpenTransaction | None:
        return self._open.pop(transaction_id, None)

    def __len__(self) -> int:
        return len(self._open)


def continued_transaction(version: Version, action: str, payload: dict[str, Any]) -> str | None:
    """The id of a transaction this message continues or ends, which may have started on an earlier
    connection (or adapter): the session then recalls it from the store, so the events stay complete."""
    if version is Version.V16:
        return str(payload["transactionId"]) if action == "StopTransaction" else None
    if action == "TransactionEvent" and payload["eventType"] != "Started":
        return str(payload["transactionInfo"]["transactionId"])
    return None
