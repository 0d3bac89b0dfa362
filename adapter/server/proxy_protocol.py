"""PROXY protocol headers (HAProxy's spec, versions 1 and 2): the client address a TCP front passes on.

Behind an AWS Network Load Balancer with IP targets every connection comes from a load balancer node;
with ``proxy_protocol_v2.enabled`` on its target group the NLB puts a binary v2 header first on each
connection, naming the charger's address. Version 1 (one text line, as HAProxy, nginx or
``curl --haproxy-protocol`` send it) costs a few lines more and is accepted too.

Sans-I/O: ``parse`` looks at the bytes received so far and says "need more", "here is the header" or
raises. It never waits for more than ``MAX_V1_LENGTH`` / ``16 + MAX_V2_LENGTH`` bytes, so a caller that
buffers until it has an answer buffers a bounded amount.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
MAX_V1_LENGTH = 107  # the spec's longest v1 line, CRLF included
# The v2 length field allows 65535 bytes. An NLB header is about 100 (addresses, its VPC endpoint TLV, CRC32C
# and padding TLVs); a limit far above that but far below 64 KiB keeps a bogus length from holding a buffer.
MAX_V2_LENGTH = 2048

_V2_FIXED = 16  # signature, version/command, family/transport, length
_LOCAL, _PROXY = 0x0, 0x1
_UNSPEC, _INET, _INET6 = 0x0, 0x1, 0x2
_STREAM = 0x1
_ADDRESS_SIZE = {_INET: 4, _INET6: 16}


class ProxyHeaderError(ValueError):
    """Not a PROXY protocol header, or a malformed one: the connection cannot be trusted to be proxied."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    length: int  # bytes the header takes at the start of the stream; the application's data follows
    source: tuple[str, int] | None  # the client (host, port); None: keep the socket's own peer (health checks)


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of ``data``; None while ``data`` is a valid but incomplete beginning of one.

    Raises ProxyHeaderError as soon as the bytes cannot start a valid header (an HTTP request, say).
    """
    if V2_SIGNATURE.startswith(data[:len(V2_SIGNATURE)]):
        return _parse_v2(data) if len(data) >= _V2_FIXED else None
    if V1_PREFIX.startswith(data[:len(V1_PREFIX)]):
        return _parse_v1(data)
    raise ProxyHeaderError("no PROXY protocol signature")


def _parse_v2(data: bytes) -> ProxyHeader | None:
    version, command = data[12] >> 4, data[12] & 0x0F
    family, transport = data[13] >> 4, data[13] & 0x0F
    length = int.from_bytes(data[14:16], "big")
    if version != 2:
        raise ProxyHeaderError(f"PROXY v2 header with version {version}")
    if command not in (_LOCAL, _PROXY):
        raise ProxyHeaderError(f"PROXY v2 header with unknown command {command}")
    if length > MAX_V2_LENGTH:
        raise ProxyHeaderError(f"PROXY v2 header of {length} bytes (at most {MAX_V2_LENGTH})")
    # LOCAL (the front's own connection, as the NLB's health checks) and UNSPEC carry no client: the spec
    # says to skip their address block whatever it holds and whatever family they announce.
    proxied = command == _PROXY and family != _UNSPEC
    size = _ADDRESS_SIZE.get(family, 0)
    if proxied and (not size or transport != _STREAM):
        raise ProxyHeaderError(f"PROXY v2 header for family {family}, transport {transport} (TCP over IP only)")
    if proxied and length < 2 * size + 4:
        raise ProxyHeaderError(f"PROXY v2 address block of {length} bytes is too short for family {family}")
    end = _V2_FIXED + length
    if len(data) < end:
        return None
    if not proxied:
        return ProxyHeader(end, None)
    # Source address, destination address, source port, destination port; TLVs (the NLB's 0xEA VPC endpoint
    # id, CRC32C, NOOP padding) fill the rest of the length and are skipped with it.
    block = data[_V2_FIXED:end]
    host = ipaddress.ip_address(block[:size])
    port = int.from_bytes(block[2 * size:2 * size + 2], "big")
    return ProxyHeader(end, (str(host), port))


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, MAX_V1_LENGTH)
    if end < 0:
        if len(data) >= MAX_V1_LENGTH:
            raise ProxyHeaderError(f"PROXY v1 header without CRLF in its first {MAX_V1_LENGTH} bytes")
        return None
    try:
        fields = data[:end].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProxyHeaderError("PROXY v1 header with non-ASCII bytes") from None
    if fields[1:2] == ["UNKNOWN"]:  # the spec: whatever follows UNKNOWN is ignored
        return ProxyHeader(end + 2, None)
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError("PROXY v1 header is not 'PROXY TCP4|TCP6 source destination sport dport'")
    _, protocol, source, destination, source_port, destination_port = fields
    version = 4 if protocol == "TCP4" else 6
    host = _v1_address(source, version)
    _v1_address(destination, version)
    port = _v1_port(source_port)
    _v1_port(destination_port)
    return ProxyHeader(end + 2, (str(host), port))


def _v1_address(text: str, version: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyHeaderError(f"PROXY v1 header with a bad address {text[:45]!r}") from None
    if address.version != version:
        raise ProxyHeaderError(f"PROXY v1 header with an IPv{address.version} address for TCP{version}")
    return address


def _v1_port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ProxyHeaderError(f"PROXY v1 header with a bad port {text[:8]!r}")
    return int(text)
