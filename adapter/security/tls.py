"""TLS for OCPP security profiles 2 and 3, terminated in the adapter.

One context serves a mixed fleet: with a CA file and ``require_client_cert=False`` a client certificate
is requested and verified when offered (``CERT_OPTIONAL``), and ``auth.Authenticator`` then insists on one
for profile 3 chargers only. ``require_client_cert=True`` refuses every connection without one during the
TLS handshake itself.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any


def server_ssl_context(certfile: str, keyfile: str, cafile: str | None,
                       require_client_cert: bool) -> ssl.SSLContext:
    if require_client_cert and not cafile:
        raise ValueError("client certificates can only be required with a CA file to verify them")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # OCPP security: TLS 1.2 or newer
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    ctx.load_cert_chain(certfile, keyfile)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


@dataclass(frozen=True)
class CertIdentity:
    common_name: str | None  # None unless the subject has exactly one CN
    serial_number: str | None  # the certificate's serial, hex
    subject_serial: str | None  # the subject's serialNumber attribute, where a vendor puts the device serial
    issuer_common_name: str | None


def _attribute(name: Any, key: str) -> str | None:
    values = [v for rdn in name or () for k, v in rdn if k == key]
    return values[0] if len(values) == 1 else None


def cert_identity(peer_cert: dict[str, Any]) -> CertIdentity:
    """Identity from an ``SSLSocket.getpeercert()`` dict (which only exists for a verified certificate)."""
    subject = peer_cert.get("subject")
    return CertIdentity(
        common_name=_attribute(subject, "commonName"),
        serial_number=peer_cert.get("serialNumber"),
        subject_serial=_attribute(subject, "serialNumber"),
        issuer_common_name=_attribute(peer_cert.get("issuer"), "commonName"),
    )


def client_cert_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> CertIdentity | None:
    """The verified client certificate's identity, None when the client presented none."""
    cert = ssl_object.getpeercert()
    return cert_identity(cert) if cert else None
