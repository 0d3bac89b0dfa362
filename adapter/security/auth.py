"""The one decision the WebSocket handshake asks for: may this connection speak for this charger id?

Each charger has a security profile (``ChargerRecord.security_profile``):

* 0 -- no authentication (local runs, or ``open`` registration's trust on first use)
* 1 -- HTTP Basic (user = charger id, password), plain ``ws://`` allowed
* 2 -- TLS + HTTP Basic
* 3 -- TLS with a verified client certificate whose subject CN is the charger id or its registered serial

A connection weaker than the charger's profile is refused, never downgraded. Statuses: 200 admitted,
400 invalid id, 401 missing/wrong credentials (with a ``WWW-Authenticate`` challenge), 403 transport or
certificate below the profile (or no password configured), 404 unknown id under ``known``, 429 too many
recent wrong passwords for this id (with ``Retry-After``).

The throttle is against password guessing, so only a supplied password found wrong counts: a refusal that
checked none (no credentials, plain ``ws://`` to profile 2) is no guess, and counting it let anyone lock a
charger out. It is consulted only where a password would be checked, after the verified-credentials cache,
so a charger presenting its already verified password is admitted while guessers of its id are refused.
Failures count per id and source address (5 a minute by default), so a guesser locks out only itself; and
per id alone with a higher ceiling (``id_throttle``, 50), against guessing spread over many addresses.

TLS terminated in front of the adapter (``front_tls_profile``):

* ``None`` -- the adapter terminates TLS itself; ``HandshakeContext.tls`` and ``peer_cert`` come from its
  own TLS stack (``tls.server_ssl_context``).
* ``2`` -- the front (e.g. an NLB TLS listener) only accepts TLS, so every connection counts as TLS for
  profile 2. A ``peer_cert`` on a connection that is not TLS at the adapter is ignored, so profile 3
  chargers are refused: route them to a TCP pass-through listener where the adapter terminates TLS.

There is no ``3``: a front that terminates TLS passes no client certificate the adapter could check, so
profile 3 always needs the adapter's own TLS (``--tls-cert``, ``--tls-key``, ``--tls-ca``).
"""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import dataclass, replace
from typing import Any

from adapter.security.identity import validate_charger_id
from adapter.security.passwords import AuthOutcome, VerifiedCache, check_basic_auth
from adapter.security.provisioning import ThingProvisioner
from adapter.security.registration import admit, check_policy
from adapter.security.throttle import Throttle
from adapter.security.tls import cert_identity
from adapter.store.async_store import AsyncStore
from adapter.store.base import ChargerRecord
from adapter.store.records import now_utc

_CHALLENGE = (("WWW-Authenticate", 'Basic realm="OCPP", charset="UTF-8"'),)


@dataclass(frozen=True)
class HandshakeContext:
    charger_id: str  # as taken from the URL path, percent-decoded, not yet validated
    authorization: str | None = None  # the Authorization header
    tls: bool = False  # TLS terminated by the adapter itself
    peer_cert: dict[str, Any] | None = None  # ssl getpeercert() of a verified client certificate
    source: str | None = None  # the peer's address (behind a load balancer: the client's with --proxy-protocol)


@dataclass(frozen=True)
class AuthDecision:
    ok: bool
    status: int
    reason: str  # safe to log and to send as the HTTP reason body: never contains a secret
    record: ChargerRecord | None = None
    headers: tuple[tuple[str, str], ...] = ()  # to add to a refusal response


_OK = "ok"


class Authenticator:
    """Holds the handshake's policy and abuse limits; one per adapter process."""

    def __init__(self, store: AsyncStore, *, registration: str = "open", front_tls_profile: int | None = None,
                 throttle: Throttle | None = None, id_throttle: Throttle | None = None, max_pending: int = 256,
                 hash_concurrency: int | None = None, provisioner: ThingProvisioner | None = None) -> None:
        if front_tls_profile not in (None, 2):
            raise ValueError("front_tls_profile must be None (TLS in the adapter) or 2: a front terminating TLS "
                             "passes no client certificate, so profile 3 needs TLS in the adapter")
        self.store = store
        self.registration = check_policy(registration)
        self.front_tls_profile = front_tls_profile
        self.throttle = throttle or Throttle()  # per id and source
        self.id_throttle = id_throttle or Throttle(max_failures=50)
        self.provisioner = provisioner
        # Bounds the work unauthenticated peers can cause: handshakes in progress, and argon2 checks
        # (each ~20 ms of CPU and 19 MiB) at once -- by default half the cores, leaving the rest to the loop.
        self._pending = asyncio.Semaphore(max_pending)
        self._hashing = asyncio.Semaphore(hash_concurrency or max(1, (os.cpu_count() or 2) // 2))
        self._verified = VerifiedCache()

    async def authenticate(self, ctx: HandshakeContext) -> AuthDecision:
        try:
            charger_id = validate_charger_id(ctx.charger_id)
        except ValueError as err:
            return AuthDecision(False, 400, str(err))
        async with self._pending:
            record = await admit(self.store, charger_id, self.registration)
            if record is None:
                return AuthDecision(False, 404, "unknown charger")
            decision = await self._check(ctx, charger_id, record)
        if decision.ok and record.first_seen is None:
            return AuthDecision(True, 200, _OK, await self._first_connection(record))
        return decision

    def _throttled(self, charger_id: str, source_key: str) -> AuthDecision | None:
        wait = max(self.throttle.retry_after(source_key), self.id_throttle.retry_after(charger_id))
        if wait <= 0:
            return None
        return AuthDecision(False, 429, "too many failed attempts", headers=(("Retry-After", str(math.ceil(wait))),))

    async def _check(self, ctx: HandshakeContext, charger_id: str, record: ChargerRecord) -> AuthDecision:
        profile = record.security_profile
        if profile == 0:
            return AuthDecision(True, 200, _OK, record)
        if profile not in (1, 2, 3):
            return AuthDecision(False, 403, f"unsupported security profile {profile}")
        if profile >= 2 and not (ctx.tls or self.front_tls_profile is not None):
            return AuthDecision(False, 403, f"security profile {profile} requires TLS")
        if profile == 3:
            return self._check_certificate(ctx, charger_id, record)
        return await self._check_password(ctx, charger_id, record)

    def _check_certificate(self, ctx: HandshakeContext, charger_id: str, record: ChargerRecord) -> AuthDecision:
        if not (ctx.tls and ctx.peer_cert):
            return AuthDecision(False, 403, "security profile 3 requires a verified client certificate")
        if cert_identity(ctx.peer_cert).common_name not in {charger_id, record.serial} - {None}:
            return AuthDecision(False, 403, "client certificate CN matches neither the charger id nor its serial")
        return AuthDecision(True, 200, _OK, record)

    async def _check_password(self, ctx: HandshakeContext, charger_id: str, record: ChargerRecord) -> AuthDecision:
        stored, header = record.password_hash, ctx.authorization
        if not stored:
            return AuthDecision(False, 403, "no password configured for this charger")
        if header and self._verified.hit(charger_id, stored, header):
            return AuthDecision(True, 200, _OK, record)  # neither throttled nor clearing a guesser's count
        source_key = f"{charger_id} {ctx.source}" if ctx.source else charger_id
        if throttled := self._throttled(charger_id, source_key):
            return throttled
        async with self._hashing:
            if throttled := self._throttled(charger_id, source_key):  # failures may have piled up while queued
                return throttled
            outcome = await asyncio.to_thread(check_basic_auth, header, charger_id, record)
        if outcome is AuthOutcome.WRONG_PASSWORD:
            self.throttle.failure(source_key)
            self.id_throttle.failure(charger_id)
        if not outcome.ok:
            return AuthDecision(False, 401, outcome.value, headers=_CHALLENGE)
        assert header is not None
        self.throttle.success(source_key)
        self._verified.remember(charger_id, stored, header)
        return AuthDecision(True, 200, _OK, record)

    async def _first_connection(self, record: ChargerRecord) -> ChargerRecord:
        """Stamp first_seen and, if configured, create the IoT thing: once, after the first success."""
        record = replace(record, first_seen=now_utc())
        await self.store.update_charger(record.charger_id, first_seen=record.first_seen)
        if self.provisioner is not None:
            await self.provisioner.ensure(record.charger_id, record.vendor, record.model)
        return record
