"""PROXY protocol parsing: the client address behind an NLB, health checks, and what is refused, and when."""

from __future__ import annotations

import pytest

from adapter.server.proxy_protocol import MAX_V1_LENGTH, MAX_V2_LENGTH, ProxyHeader, ProxyHeaderError, parse
from tests.core.proxy_headers import (
    AWS_VPCE_TLV,
    CRC32C_TLV,
    LOCAL,
    NLB_HEALTH_CHECK,
    PROXY,
    TCP4,
    TCP6,
    addresses,
    v2,
    v2_from,
)

REQUEST = b"GET /ocpp/CP-1 HTTP/1.1\r\nHost: adapter\r\n\r\n"


def parsed(header: bytes) -> ProxyHeader | None:
    """Parses ``header`` followed by the request, which must be left exactly where the header ends."""
    result = parse(header + REQUEST)
    assert result is None or (header + REQUEST)[result.length:] == REQUEST
    return result


# -- v2, as the NLB sends it ---------------------------------------------------------------------------------
def test_v2_proxy_over_ipv4_names_the_client() -> None:
    header = v2_from("203.0.113.7", 45678)
    assert parsed(header) == ProxyHeader(len(header), ("203.0.113.7", 45678))


def test_v2_proxy_over_ipv6_names_the_client() -> None:
    header = v2_from("2001:db8::7", 443)
    assert parsed(header) == ProxyHeader(len(header), ("2001:db8::7", 443))


def test_tlvs_after_the_addresses_are_skipped() -> None:
    header = v2_from("203.0.113.7", 45678, AWS_VPCE_TLV + CRC32C_TLV + bytes([0x04, 0x00, 0x03, 0, 0, 0]))
    assert parsed(header) == ProxyHeader(len(header), ("203.0.113.7", 45678))


def test_local_as_an_nlb_health_check_sends_it_keeps_the_socket_address() -> None:
    assert parsed(NLB_HEALTH_CHECK) == ProxyHeader(len(NLB_HEALTH_CHECK), None)
    with_addresses = v2(LOCAL, TCP4, addresses("198.51.100.1", 1))  # whatever LOCAL carries is ignored
    assert parsed(with_addresses) == ProxyHeader(len(with_addresses), None)


def test_proxy_for_an_unspecified_family_keeps_the_socket_address() -> None:
    assert parsed(v2(PROXY, 0x00)) == ProxyHeader(16, None)


@pytest.mark.parametrize("header", [v2_from("203.0.113.7", 45678, AWS_VPCE_TLV), NLB_HEALTH_CHECK,
                                    b"PROXY TCP4 203.0.113.7 10.0.1.20 45678 9000\r\n"],
                         ids=["v2-proxy", "v2-local", "v1"])
def test_an_incomplete_header_waits_for_more_bytes(header: bytes) -> None:
    assert [parse(header[:n]) for n in range(len(header))] == [None] * len(header)
    assert parse(header) is not None


# -- refused, as early as the bytes allow --------------------------------------------------------------------
@pytest.mark.parametrize("data", [
    b"G",  # an HTTP request: the front sends no header, or the connection bypassed it
    REQUEST,
    bytes.fromhex("160301"),  # a TLS ClientHello
    v2_from("203.0.113.7", 1)[:11] + b"X",  # the v2 signature with its last byte wrong
    b"PROXY\r\n",
    b"proxy TCP4 ",
])
def test_anything_but_a_signature_is_refused_at_once(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(data)


@pytest.mark.parametrize("header", [
    v2(version=1), v2(version=3),  # wrong version
    v2(command=0x2), v2(command=0xF),  # neither LOCAL nor PROXY
    v2(LOCAL, length=MAX_V2_LENGTH + 1), v2(PROXY, length=0xFFFF),  # too long to wait for
    v2(PROXY, 0x31, length=216),  # AF_UNIX
    v2(PROXY, 0x12, length=12),  # UDP over IPv4
    v2(PROXY, TCP4, length=8), v2(PROXY, TCP6, length=24),  # address block too short for the family
], ids=["v1", "v3", "command-2", "command-15", "over-limit", "64k", "unix", "udp", "short-ipv4", "short-ipv6"])
def test_a_bad_v2_header_is_refused_from_its_16_fixed_bytes(header: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(header[:16])


def test_the_longest_v2_header_allowed_is_read() -> None:
    header = v2(LOCAL, block=bytes(MAX_V2_LENGTH))
    assert parsed(header) == ProxyHeader(16 + MAX_V2_LENGTH, None)


# -- v1 ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("line", "source"), [
    (b"PROXY TCP4 203.0.113.7 10.0.1.20 45678 9000\r\n", ("203.0.113.7", 45678)),
    (b"PROXY TCP6 2001:db8::7 fd00::20 443 9000\r\n", ("2001:db8::7", 443)),
    (b"PROXY UNKNOWN\r\n", None),
    (b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", None),
])
def test_v1_lines(line: bytes, source: tuple[str, int] | None) -> None:
    assert parsed(line) == ProxyHeader(len(line), source)


@pytest.mark.parametrize("line", [
    b"PROXY TCP4 203.0.113.7 10.0.1.20 45678\r\n",  # a field missing
    b"PROXY TCP5 203.0.113.7 10.0.1.20 45678 9000\r\n",
    b"PROXY TCP4 2001:db8::7 10.0.1.20 45678 9000\r\n",  # IPv6 address for TCP4
    b"PROXY TCP4 203.0.113.7 10.0.1.256 45678 9000\r\n",
    b"PROXY TCP4 203.0.113.7 10.0.1.20 65536 9000\r\n",
    b"PROXY TCP4 203.0.113.7 10.0.1.20 -1 9000\r\n",
    b"PROXY TCP4  203.0.113.7 10.0.1.20 45678 9000\r\n",  # two spaces
    "PROXY TCP4 203.0.113.7 10.0.1.20 4567\u0661 9000\r\n".encode(),  # a non-ASCII digit
])
def test_malformed_v1_lines_are_refused(line: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(line)


def test_a_v1_line_without_crlf_in_107_bytes_is_refused_then_not_before() -> None:
    unterminated = b"PROXY UNKNOWN " + b"x" * MAX_V1_LENGTH
    assert parse(unterminated[:MAX_V1_LENGTH - 1]) is None
    with pytest.raises(ProxyHeaderError):
        parse(unterminated[:MAX_V1_LENGTH])
    longest = b"PROXY UNKNOWN " + b"x" * (MAX_V1_LENGTH - 16) + b"\r\n"
    assert len(longest) == MAX_V1_LENGTH and parse(longest) == ProxyHeader(MAX_V1_LENGTH, None)
