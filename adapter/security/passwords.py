"""Charger passwords (OCPP security profiles 1 and 2): argon2id hashes, Basic-auth checking.

argon2id is salted and deliberately slow, so ``check_basic_auth`` must run off the event loop. After a
successful check, ``VerifiedCache`` lets the same credentials through again for a keyed digest's cost,
so a reconnect storm does not pay argon2 once per charger per reconnect. Secrets never reach a log or an
exception message.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from adapter.store.base import ChargerRecord

PASSWORD_MIN, PASSWORD_MAX = 16, 40  # OCPP 2.0.1 BasicAuthPassword: passwordString(16..40)
_MAX_HEADER = 512
# OWASP's argon2id baseline (19 MiB, 2 passes): ~20 ms per check and 19 MiB per concurrent check.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class AuthOutcome(enum.Enum):
    OK = "ok"
    MISSING = "no credentials"
    MALFORMED = "malformed Authorization header"
    WRONG_USER = "user name is not the charger id"
    NO_PASSWORD = "no password configured for this charger"  # noqa: S105 (a reason, not a secret)
    WRONG_PASSWORD = "wrong password"  # noqa: S105

    @property
    def ok(self) -> bool:
        return self is AuthOutcome.OK


def validate_password(password: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValueError(f"password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters (OCPP), "
                         f"got {len(password)}")
    if not all(" " <= c <= "~" for c in password):
        raise ValueError("password must be printable ASCII characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(validate_password(password))


def verify_password(password_hash: str, password: str) -> bool:
    """Constant-time (libargon2 compares digests in constant time); False for any unusable hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _parse_basic_auth(header_value: str | None, charger_id: str) -> str | AuthOutcome:
    """The password from ``Basic base64(charger_id:password)``, or why there is none.

    The user name must be the charger id. Matching the known id as a prefix, rather than splitting at
    the first colon, keeps ids that contain ``:`` unambiguous.
    """
    if not header_value:
        return AuthOutcome.MISSING
    scheme, _, token = header_value.strip().partition(" ")
    if scheme.lower() != "basic" or len(header_value) > _MAX_HEADER:
        return AuthOutcome.MALFORMED
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return AuthOutcome.MALFORMED
    prefix = f"{charger_id}:"
    if not decoded.startswith(prefix):
        return AuthOutcome.WRONG_USER if ":" in decoded else AuthOutcome.MALFORMED
    return decoded[len(prefix):]


def check_basic_auth(header_value: str | None, charger_id: str, record: ChargerRecord) -> AuthOutcome:
    """Full check of a Basic ``Authorization`` header against the charger's stored hash (slow)."""
    password = _parse_basic_auth(header_value, charger_id)
    if isinstance(password, AuthOutcome):
        return password
    if not record.password_hash:
        return AuthOutcome.NO_PASSWORD
    return AuthOutcome.OK if verify_password(record.password_hash, password) else AuthOutcome.WRONG_PASSWORD


class VerifiedCache:
    """Authorization headers that recently passed ``check_basic_auth``, per charger and stored hash.

    Holds an HMAC of the header under a per-process random key, never the header itself. An entry stops
    matching as soon as the stored hash changes (password rotated). Bounded, least recently used first out.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._key = secrets.token_bytes(32)
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, header_value: str) -> bytes:
        return hmac.new(self._key, header_value.encode(), hashlib.sha256).digest()

    def hit(self, charger_id: str, password_hash: str, header_value: str) -> bool:
        with self._lock:
            entry = self._entries.get(charger_id)
            if entry is None or entry[0] != password_hash:
                return False
            self._entries.move_to_end(charger_id)
        return hmac.compare_digest(entry[1], self._digest(header_value))

    def remember(self, charger_id: str, password_hash: str, header_value: str) -> None:
        digest = self._digest(header_value)
        with self._lock:
            self._entries[charger_id] = (password_hash, digest)
            self._entries.move_to_end(charger_id)
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)
