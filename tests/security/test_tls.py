"""Real TLS handshakes on 127.0.0.1 with certificates made at test time."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from adapter.security.auth import Authenticator, HandshakeContext
from adapter.security.tls import CertIdentity, cert_identity, client_cert_identity, server_ssl_context
from adapter.store.async_store import AsyncStore
from adapter.store.base import ChargerRecord
from adapter.store.factory import open_store
from tests.security.pki import Authority


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca, rogue = Authority(directory, "Test CA"), Authority(directory, "Rogue CA")
    return {
        "ca": ca,
        "server": ca.issue("localhost", server=True),
        "cp1": ca.issue("CP-1", subject_serial="SN-0001"),
        "serial": ca.issue("SN-3"),
        "other": ca.issue("CP-2"),
        "rogue": rogue.issue("CP-1"),
    }


def client_context(pki, cert: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"].ca_file))
    if cert:
        ctx.load_cert_chain(pki[cert].cert, pki[cert].key)
    return ctx


class Server:
    """Accepts TLS connections and answers each with the Authenticator's status for charger ``CP-1``."""

    def __init__(self, ctx: ssl.SSLContext, authenticator: Authenticator | None = None) -> None:
        self.ctx, self.authenticator = ctx, authenticator
        self.identities: list[CertIdentity | None] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        self.identities.append(client_cert_identity(ssl_object))
        status = 0
        if self.authenticator:
            ctx = HandshakeContext("CP-1", tls=True, peer_cert=writer.get_extra_info("peercert"))
            status = (await self.authenticator.authenticate(ctx)).status
        writer.write(f"{status}\n".encode())
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=self.ctx)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def exchange(self, client_ctx: ssl.SSLContext) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, ssl=client_ctx,
                                                       server_hostname="localhost")
        try:
            return await reader.readline()
        finally:
            writer.close()


def server_context(pki, *, require: bool) -> ssl.SSLContext:
    return server_ssl_context(str(pki["server"].cert), str(pki["server"].key), str(pki["ca"].ca_file), require)


async def test_client_certificate_identity_is_extracted(pki):
    async with Server(server_context(pki, require=False)) as server:
        assert await server.exchange(client_context(pki, "cp1")) == b"0\n"
        assert await server.exchange(client_context(pki, None)) == b"0\n"
    identity, anonymous = server.identities
    assert anonymous is None
    assert identity.common_name == "CP-1" and identity.subject_serial == "SN-0001"
    assert identity.issuer_common_name == "Test CA"
    assert identity.serial_number and int(identity.serial_number, 16) > 0


async def refused(server: Server, client_ctx: ssl.SSLContext) -> bool:
    try:
        reply = await server.exchange(client_ctx)
    except (ssl.SSLError, ConnectionResetError):
        return True
    return reply == b""  # TLS 1.3 clients may only see the server close after its refusal


@pytest.mark.parametrize("cert", [None, "rogue"])
async def test_required_client_certificate_is_enforced_by_the_tls_handshake(pki, cert):
    async with Server(server_context(pki, require=True)) as server:
        assert await refused(server, client_context(pki, cert))
        assert await server.exchange(client_context(pki, "cp1")) == b"0\n"
    assert [i.common_name for i in server.identities] == ["CP-1"]  # the refused one never got through


@pytest.mark.parametrize(("cert", "status"), [("cp1", b"200\n"), ("serial", b"200\n"), ("other", b"403\n"),
                                              (None, b"403\n")])
async def test_profile_3_over_real_tls(pki, cert, status):
    store = AsyncStore(open_store("memory://"))
    await store.upsert_charger(ChargerRecord("CP-1", security_profile=3, serial="SN-3"))
    authenticator = Authenticator(store, registration="known")
    async with Server(server_context(pki, require=False), authenticator) as server:
        assert await server.exchange(client_context(pki, cert)) == status
    await store.close()


def test_context_is_tls12_or_newer_and_needs_a_ca_to_require_client_certs(pki):
    ctx = server_ssl_context(str(pki["server"].cert), str(pki["server"].key), None, False)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_NONE
    assert server_context(pki, require=False).verify_mode == ssl.CERT_OPTIONAL
    assert server_context(pki, require=True).verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(ValueError, match="CA file"):
        server_ssl_context(str(pki["server"].cert), str(pki["server"].key), None, True)


def test_cert_identity_needs_exactly_one_common_name():
    cert = {"subject": ((("commonName", "a"),), (("commonName", "b"),)), "serialNumber": "0A"}
    assert cert_identity(cert) == CertIdentity(None, "0A", None, None)
