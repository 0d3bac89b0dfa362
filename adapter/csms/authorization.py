"""Token decisions: accept-all, the local list, or the back end over MQTT with the local list as fallback."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Protocol

from adapter.csms.policy import AuthPolicy, CsmsPolicy
from adapter.store.base import IdTokenRecord

log = logging.getLogger(__name__)


class TokenLookup(Protocol):
    async def get_id_token(self, token: str) -> IdTokenRecord | None: ...


class Delegate(Protocol):
    """Asks the back end; ``None`` when it did not answer before the deadline."""

    async def ask(self, charger_id: str, action: str, payload: dict[str, Any],
                  timeout: float) -> dict[str, Any] | None: ...


async def local_decision(tokens: TokenLookup, token: str) -> tuple[str, str | None]:
    record = await tokens.get_id_token(token)
    if record is None:
        return "Invalid", None
    if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
        return "Expired", record.parent_id
    return record.status, record.parent_id


async def decide(policy: CsmsPolicy, tokens: TokenLookup, delegate: Delegate | None, charger_id: str,
                 token: str, token_type: str | None) -> tuple[str, str | None]:
    """(status, parent id) for a token, in 1.6 vocabulary which 2.x shares for these statuses."""
    if policy.auth is AuthPolicy.ACCEPT_ALL:
        return "Accepted", None
    if policy.auth is AuthPolicy.DELEGATE and delegate is not None:
        reply = await delegate.ask(charger_id, "Authorize", {"id_token": token, "token_type": token_type},
                                   policy.delegate_timeout_s)
        if reply is not None and isinstance(reply.get("status"), str):
            return reply["status"], reply.get("parent_id")
        log.warning("authorization delegate did not answer; using the local list",
                    extra={"charger_id": charger_id})
    return await local_decision(tokens, token)
