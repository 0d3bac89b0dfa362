"""Identifiers that arrive from the network, checked once with one rule everywhere they are used.

A charger id becomes an MQTT topic level, an IoT thing name, a store key and the Basic-auth user name,
so it is limited to characters that are inert in all of them: ASCII letters, digits and ``. _ - :``.
Never ``/`` (URL path, topic level), ``+``/``#`` (MQTT wildcards), NUL, whitespace or control characters.
``:`` is allowed (MAC-style ids are common); Basic auth stays unambiguous because the expected id is known
(see ``passwords.check_basic_auth``). IoT thing names do not allow ``.``; provisioning refuses such ids.
Ids starting with ``adapter-`` are the adapter's own MQTT client ids: a charger by that name would, in
per-charger mode, take over the adapter's control connection.
"""

from __future__ import annotations

import re

CHARGER_ID_MAX = 48  # OCPP 2.0.1 identifierString(48), the identity in the connection URL
ID_TOKEN_MAX = 36  # OCPP 2.0.1 IdTokenType.idToken (1.6 allows 20)
_CHARGER_ID_CHAR = re.compile(r"[A-Za-z0-9._:-]")
_ID_TOKEN_CHAR = re.compile(r"[!-~]")
ADAPTER_CLIENT_PREFIX = "adapter-"  # printable ASCII without space


def _check(kind: str, raw: str, max_len: int, allowed: re.Pattern[str], allowed_text: str) -> str:
    if not raw:
        raise ValueError(f"{kind} is empty")
    if len(raw) > max_len:
        raise ValueError(f"{kind} is {len(raw)} characters long; at most {max_len} are allowed")
    bad = next((c for c in raw if not allowed.fullmatch(c)), None)
    if bad is not None:
        raise ValueError(f"{kind} contains {bad!r}; allowed are {allowed_text}")
    return raw


def validate_charger_id(raw: str) -> str:
    """Return ``raw`` unchanged if it is a valid charger id, else raise ValueError saying why."""
    _check("charger id", raw, CHARGER_ID_MAX, _CHARGER_ID_CHAR, "ASCII letters, digits and . _ - :")
    if raw.strip(".") == "":
        raise ValueError("charger id cannot consist of dots only")
    if raw.startswith(ADAPTER_CLIENT_PREFIX):
        raise ValueError(f"charger id may not start with {ADAPTER_CLIENT_PREFIX!r}: the adapter's own MQTT "
                         "connections use such client ids")
    return raw


def validate_id_token(raw: str) -> str:
    """Return ``raw`` unchanged if it is a valid id token (RFID uid, contract id ...), else raise."""
    return _check("id token", raw, ID_TOKEN_MAX, _ID_TOKEN_CHAR, "printable ASCII characters without spaces")
