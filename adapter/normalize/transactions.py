"""What a session remembers about open transactions, so later messages that omit it still normalize fully."""

from __future__ import annotations

from dataclasses import dataclass


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
