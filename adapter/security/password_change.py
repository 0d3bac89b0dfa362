"""OCPP's own way to rotate a charger's Basic auth password, which the adapter has to take part in.

1.6 (security whitepaper) writes ``AuthorizationKey`` with ChangeConfiguration; 2.x (use case A01) writes
``SecurityCtrlr.BasicAuthPassword`` with SetVariables. Whoever asks (a back-end request, a shadow delta), the
new password must be one the adapter can store before the charger is sent it, or the charger would lock
itself out; it never reaches the audit log or the reported shadow; and once the charger accepts it, its hash
replaces the stored one, since the charger reconnects with it.
"""

from __future__ import annotations

import copy
from typing import Any

from adapter.security.passwords import validate_password

REDACTED = "********"
_KEY_V16 = "authorizationkey"
_COMPONENT, _VARIABLE = "securityctrlr", "basicauthpassword"


def _is_password_variable(item: Any) -> bool:
    try:
        return bool(item["component"]["name"].casefold() == _COMPONENT
                    and item["variable"]["name"].casefold() == _VARIABLE)
    except (KeyError, TypeError, AttributeError):
        return False


def new_password(operation: str, payload: dict[str, Any]) -> str | None:
    """The password this request sets, if it sets one (configuration keys compared case-insensitively)."""
    if operation == "ChangeConfiguration" and str(payload.get("key", "")).casefold() == _KEY_V16:
        value = payload.get("value")
        return value if isinstance(value, str) else None
    if operation == "SetVariables":
        for item in payload.get("setVariableData") or []:
            if _is_password_variable(item) and isinstance(item.get("attributeValue"), str):
                return str(item["attributeValue"])
    return None


def check(operation: str, payload: dict[str, Any]) -> None:
    """Raise ValueError (without the password) when the request sets one the adapter could not store."""
    password = new_password(operation, payload)
    if password is not None:
        validate_password(password)


def redacted(operation: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as it may be recorded: the password replaced."""
    if new_password(operation, payload) is None:
        return payload
    hidden = copy.deepcopy(payload)
    if operation == "ChangeConfiguration":
        hidden["value"] = REDACTED
    else:
        for item in hidden["setVariableData"]:
            if _is_password_variable(item):
                item["attributeValue"] = REDACTED
    return hidden


def accepted(operation: str, response: dict[str, Any]) -> bool:
    """Did the charger take the new password? (2.x answers per variable, in any order.)"""
    if operation == "ChangeConfiguration":
        return bool(response.get("status") == "Accepted")
    results = [r for r in response.get("setVariableResult") or [] if _is_password_variable(r)]
    return bool(results) and all(r.get("attributeStatus") == "Accepted" for r in results)
