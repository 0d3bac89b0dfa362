"""What a session remembers about open transactions and its EVSEs' connectors, so later messages that omit it
still normalize fully."""

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


_SEVERAL = -1  # an EVSE whose status reports named more than one connector


class TransactionBook:
    __slots__ = ("_connectors", "_open")

    def __init__(self) -> None:
        self._open: dict[str, OpenTransaction] = {}
        # 2.x EVSE id -> the connector its status reports named, or _SEVERAL; made at the first (one per session
        # of the fleet, so 1.6 sessions, which never name one, keep none)
        self._connectors: dict[int, int] | None = None

    def open(self, tx: OpenTransaction) -> None:
        self._open[tx.transaction_id] = tx

    def get(self, transaction_id: str) -> OpenTransaction | None:
        return self._open.get(transaction_id)

    def close(self, transaction_id: str) -> OpenTransaction | None:
        return self._open.pop(transaction_id, None)

    def note_connector(self, evse_id: int, connector_id: int) -> None:
        if self._connectors is None:
            self._connectors = {}
        if self._connectors.setdefault(evse_id, connector_id) != connector_id:
            self._connectors[evse_id] = _SEVERAL

    def connector_of(self, evse_id: int) -> int | None:
        """The connector a 2.x message naming only the EVSE is about: the one its open transaction uses (an
        EVSE serves one vehicle at a time), else its only known connector; None when that is not clear."""
        for tx in self._open.values():
            if tx.evse_id == evse_id and tx.connector_id is not None:
                return tx.connector_id
        known = self._connectors.get(evse_id) if self._connectors else None
        return None if known == _SEVERAL else known

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
