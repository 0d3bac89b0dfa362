"""The adapter's own answers to charger-initiated messages; the back end only observes them on MQTT.

Every charger action of every version has a defined answer here (``docs/ocpp-actions.md`` lists them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapter.csms.authorization import Delegate, TokenLookup, decide
from adapter.csms.policy import BootPolicy, CsmsPolicy
from adapter.normalize.transactions import TransactionBook
from adapter.ocpp.errors import ErrorKind, OcppError
from adapter.ocpp.timestamps import now_iso, parse_timestamp
from adapter.ocpp.versions import Version
from adapter.store.base import TransactionRecord, transaction_key
from adapter.store.records import utc_ms

log = logging.getLogger(__name__)

Payload = dict[str, Any]

# Answers that need no decision: the minimal valid response per action (``{}`` where nothing is required).
FIXED_ANSWERS: dict[str, Payload] = {
    "DataTransfer": {"status": "UnknownVendorId"},
    "SignCertificate": {"status": "Rejected"},  # no certificate authority is configured in the adapter
    "Get15118EVCertificate": {"status": "Failed", "exiResponse": ""},
    "GetCertificateStatus": {"status": "Failed"},
    "NotifyEVChargingNeeds": {"status": "Rejected"},  # no ISO 15118 schedule negotiation yet
    "NotifyEVChargingSchedule": {"status": "Accepted"},
    "OpenPeriodicEventStream": {"status": "Rejected"},
    "PullDynamicScheduleUpdate": {"status": "Rejected"},
    "GetCertificateChainStatus": {"certificateStatus": [{
        "certificateHashData": {"hashAlgorithm": "SHA256", "issuerNameHash": "0", "issuerKeyHash": "0",
                                "serialNumber": "0"},
        "source": "OCSP", "status": "Unknown", "nextUpdate": "1970-01-01T00:00:00Z"}]},
}


# What each version's idTagInfo / idTokenInfo status may say; anything else a rule gives is ``Invalid``.
_TOKEN_STATUSES_V16 = frozenset({"Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"})
_TOKEN_STATUSES_V2 = _TOKEN_STATUSES_V16 | {"NoCredit", "NotAllowedTypeEVSE", "NotAtThisLocation", "NotAtThisTime",
                                            "Unknown"}


_TRIGGERS = frozenset({"TriggerMessage", "ExtendedTriggerMessage"})
# TriggerMessage's requestedMessage values that name no action: the certificate signing requests.
_TRIGGERED_ACTION = {"SignChargePointCertificate": "SignCertificate",
                     "SignChargingStationCertificate": "SignCertificate",
                     "SignV2GCertificate": "SignCertificate", "SignCombinedCertificate": "SignCertificate"}


class Transactions(Protocol):
    async def next_transaction_id(self) -> int: ...
    async def active_transactions(self, charger_id: str) -> list[TransactionRecord]: ...


@dataclass(slots=True)
class SessionState:
    """What the central system knows about one connected charger."""

    charger_id: str
    version: Version
    boot_status: str | None = None  # restored at connect: a charger reconnecting without reboot sends no boot
    book: TransactionBook = field(default_factory=TransactionBook)
    triggered: set[str] = field(default_factory=set)  # actions asked for by TriggerMessage while not accepted

    def sent(self, operation: str, payload: Payload) -> None:
        """Note a CALL sent to the charger: a triggered message may come while its boot is still pending."""
        if operation in _TRIGGERS and isinstance(message := payload.get("requestedMessage"), str):
            self.triggered.add(_TRIGGERED_ACTION.get(message, message))

    def resumed_from(self, previous: SessionState) -> SessionState:
        """A reconnect in the same process keeps what the last session learned, unless the version changed
        (which takes a reboot: the charger boots again)."""
        if previous.version is not self.version:
            return self
        return SessionState(self.charger_id, self.version, previous.boot_status, previous.book)


class CentralSystem:
    def __init__(self, policy: CsmsPolicy, tokens: TokenLookup, transactions: Transactions,
                 delegate: Delegate | None = None) -> None:
        self.policy = policy
        self._tokens = tokens
        self._transactions = transactions
        self._delegate = delegate

    def gate(self, state: SessionState, action: str, message_id: str) -> OcppError | None:
        """Before its boot is accepted a charger may only boot (2.x: SecurityError; 1.6: configurable); while
        pending it may also send what the central system asked for (reports, triggered messages)."""
        if action == "BootNotification" or state.boot_status == "Accepted":
            return None
        if state.boot_status == "Pending" and (action == "NotifyReport" or action in state.triggered):
            return None
        if state.version is Version.V16 and self.policy.v16_tolerate_preboot:
            return None
        return OcppError(ErrorKind.SECURITY, f"{action} before BootNotification was accepted", message_id)

    async def answer(self, state: SessionState, action: str, payload: Payload) -> Payload:
        handler = getattr(self, f"_on_{action}", None)
        if handler is not None:
            result: Payload = await handler(state, payload)
            return result
        if action == "DataTransfer" and self.policy.delegate_data_transfer and self._delegate is not None:
            reply = await self._delegate.ask(state.charger_id, action, payload, self.policy.delegate_timeout_s)
            if reply is not None:
                return reply
        return dict(FIXED_ANSWERS.get(action, {}))

    async def _on_BootNotification(self, state: SessionState, payload: Payload) -> Payload:
        status = {BootPolicy.ACCEPT: "Accepted", BootPolicy.PENDING: "Pending",
                  BootPolicy.REJECT: "Rejected"}[self.policy.boot]
        state.boot_status = status
        return {"status": status, "currentTime": now_iso(), "interval": self.policy.heartbeat_interval}

    async def _on_Heartbeat(self, state: SessionState, payload: Payload) -> Payload:
        return {"currentTime": now_iso()}

    async def _token_info(self, state: SessionState, token: str, token_type: str | None) -> Payload:
        status, parent = await decide(self.policy, self._tokens, self._delegate, state.charger_id, token,
                                      token_type)
        allowed = _TOKEN_STATUSES_V16 if state.version is Version.V16 else _TOKEN_STATUSES_V2
        if status not in allowed:
            log.warning("token status not in this OCPP version's vocabulary; answering Invalid",
                        extra={"charger_id": state.charger_id, "status": str(status)[:40],
                               "ocpp_version": state.version.value})
            status = "Invalid"
        if not isinstance(parent, str):
            parent = None
        if state.version is Version.V16:
            info: Payload = {"status": status}
            if parent:
                info["parentIdTag"] = parent
            return {"idTagInfo": info}
        info = {"status": status}
        if parent:
            info["groupIdToken"] = {"idToken": parent, "type": "Central"}
        return {"idTokenInfo": info}

    async def _on_Authorize(self, state: SessionState, payload: Payload) -> Payload:
        if state.version is Version.V16:
            return await self._token_info(state, payload["idTag"], None)
        token = payload["idToken"]
        return await self._token_info(state, token["idToken"], token["type"])

    async def _on_StartTransaction(self, state: SessionState, payload: Payload) -> Payload:
        info = await self._token_info(state, payload["idTag"], None)
        return {"transactionId": await self._transaction_id(state.charger_id, payload), **info}

    async def _transaction_id(self, charger_id: str, payload: Payload) -> int:
        """A 1.6 charger that heard no answer sends the same StartTransaction again (after a reconnect, say):
        it gets the id it was given, so the back end sees one transaction, not a second one that never ends."""
        try:
            start = (payload["connectorId"], payload["idTag"], float(payload["meterStart"]),
                     utc_ms(parse_timestamp(payload["timestamp"])))
        except ValueError:  # a time no store could have kept (a leap second): nothing to match
            return await self._transactions.next_transaction_id()
        for record in await self._transactions.active_transactions(charger_id):
            if (record.evse_id, record.id_token, record.meter_start_wh, record.started_at) == start:
                return int(record.transaction_id.removeprefix(transaction_key(charger_id, "")))
        return await self._transactions.next_transaction_id()

    async def _on_StopTransaction(self, state: SessionState, payload: Payload) -> Payload:
        return await self._token_info(state, payload["idTag"], None) if payload.get("idTag") else {}

    async def _on_TransactionEvent(self, state: SessionState, payload: Payload) -> Payload:
        token = payload.get("idToken")
        if not token or token["type"] == "NoAuthorization" or payload["eventType"] == "Ended":
            return {}  # free vend: the charger authorized nothing, so there is no token to rule on
        return await self._token_info(state, token["idToken"], token["type"])

    async def _on_VatNumberValidation(self, state: SessionState, payload: Payload) -> Payload:
        return {"vatNumber": payload["vatNumber"], "status": "Rejected"}
