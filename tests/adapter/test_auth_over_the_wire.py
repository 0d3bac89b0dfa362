"""The auth matrix through the adapter's own handshake: Basic auth, TLS, mutual TLS, registration."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from websockets.exceptions import InvalidMessage, InvalidStatus

from adapter.security.passwords import hash_password
from adapter.store.base import ChargerRecord
from tests.adapter.events import boot_16
from tests.security.pki import Authority

PASSWORD = "correct-horse-battery"


def basic(charger_id: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{charger_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def status_of(url: str, **kwargs: Any) -> int:
    try:
        ws = await websockets.connect(url, subprotocols=["ocpp1.6"], **kwargs)  # type: ignore[list-item]
    except InvalidStatus as exc:
        return exc.response.status_code
    await ws.send(orjson.dumps([2, "b", "BootNotification", boot_16()]).decode())
    assert (await ws.recv()).startswith("[3")
    await ws.close()
    return 101


async def add(adapter: Any, charger_id: str, profile: int, serial: str | None = None) -> None:
    await adapter.ctx.store.upsert_charger(ChargerRecord(charger_id, password_hash=hash_password(PASSWORD),
                                                         security_profile=profile, serial=serial))


async def test_basic_auth_and_registration(adapter_factory: Any) -> None:
    adapter = await adapter_factory(registration="known")
    await add(adapter, "CP-1", 1)
    url = f"ws://127.0.0.1:{adapter.port}/ocpp"
    assert await status_of(f"{url}/CP-1") == 401
    assert await status_of(f"{url}/CP-1", additional_headers=basic("CP-1", "wrong-password-123")) == 401
    assert await status_of(f"{url}/CP-1", additional_headers=basic("CP-9", PASSWORD)) == 401
    assert await status_of(f"{url}/CP-1", additional_headers=basic("CP-1", PASSWORD)) == 101
    assert await status_of(f"{url}/UNKNOWN") == 404
    await add(adapter, "CP-2", 2)
    assert await status_of(f"{url}/CP-2", additional_headers=basic("CP-2", PASSWORD)) == 403, "no downgrade"


async def test_a_repeated_authorization_header_is_a_400(adapter_factory: Any) -> None:
    """Which of two credentials counts is ambiguous: refused plainly, not an HTTP 500 from the header lookup."""
    adapter = await adapter_factory(registration="known")
    await add(adapter, "CP-1", 1)
    headers = [("Authorization", basic("CP-1", PASSWORD)["Authorization"]),
               ("Authorization", basic("CP-1", "wrong-password-123")["Authorization"])]
    assert await status_of(f"ws://127.0.0.1:{adapter.port}/ocpp/CP-1", additional_headers=headers) == 400


async def test_anonymous_requests_cannot_lock_a_charger_out(adapter_factory: Any) -> None:
    adapter = await adapter_factory(registration="known")
    await add(adapter, "CP-1", 1)
    url = f"ws://127.0.0.1:{adapter.port}/ocpp/CP-1"
    legitimate, wrong = basic("CP-1", PASSWORD), basic("CP-1", "wrong-password-123")
    assert await status_of(url, additional_headers=legitimate) == 101
    assert [await status_of(url) for _ in range(6)] == [401] * 6
    assert await status_of(url, additional_headers=legitimate) == 101
    assert [await status_of(url, additional_headers=wrong) for _ in range(5)] == [401] * 5
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(url, additional_headers=wrong)
    assert (refused.value.response.status_code, refused.value.response.headers["Retry-After"]) == (429, "60")
    assert await status_of(url, additional_headers=legitimate) == 101, "already verified: never throttled"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory: Path = tmp_path_factory.mktemp("adapter-pki")
    ca, rogue = Authority(directory, "Test CA"), Authority(directory, "Rogue CA")
    return {"ca": ca, "server": ca.issue("localhost", server=True), "cp3": ca.issue("CP-3"),
            "serial": ca.issue("SN-7"), "other": ca.issue("CP-4"), "rogue": rogue.issue("CP-3")}


def client_tls(pki: dict[str, Any], cert: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"].ca_file))
    if cert:
        ctx.load_cert_chain(pki[cert].cert, pki[cert].key)
    return ctx


async def test_tls_profiles_2_and_3(adapter_factory: Any, pki: dict[str, Any]) -> None:
    adapter = await adapter_factory(tls_cert=str(pki["server"].cert), tls_key=str(pki["server"].key),
                                    tls_ca=str(pki["ca"].ca_file))
    await add(adapter, "CP-2", 2)
    await add(adapter, "CP-3", 3)
    await add(adapter, "CP-5", 3, serial="SN-7")
    url = f"wss://localhost:{adapter.port}/ocpp"
    assert await status_of(f"{url}/CP-2", ssl=client_tls(pki, None), additional_headers=basic("CP-2", PASSWORD)) == 101
    assert await status_of(f"{url}/CP-2", ssl=client_tls(pki, None)) == 401
    assert await status_of(f"{url}/CP-3", ssl=client_tls(pki, "cp3")) == 101
    assert await status_of(f"{url}/CP-3", ssl=client_tls(pki, None)) == 403, "profile 3 needs a client cert"
    assert await status_of(f"{url}/CP-3", ssl=client_tls(pki, "other")) == 403, "CN must match the id"
    assert await status_of(f"{url}/CP-5", ssl=client_tls(pki, "serial")) == 101, "or the registered serial"
    # A certificate from another CA fails the TLS handshake (under TLS 1.3 the client sees the close).
    with pytest.raises((ssl.SSLError, InvalidMessage)):
        await websockets.connect(f"{url}/CP-3", ssl=client_tls(pki, "rogue"), subprotocols=["ocpp1.6"])  # type: ignore[list-item]
