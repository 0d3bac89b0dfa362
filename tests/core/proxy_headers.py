"""PROXY protocol headers as fronts send them, for the parser's tests and the adapter's over real sockets."""

from __future__ import annotations

import ipaddress

from adapter.server.proxy_protocol import V2_SIGNATURE

LOCAL, PROXY = 0x0, 0x1
TCP4, TCP6 = 0x11, 0x21  # family << 4 | transport
# PP2_TYPE_AWS (0xEA), subtype PP2_SUBTYPE_AWS_VPCE_ID (0x01): the VPC endpoint a PrivateLink client came through.
AWS_VPCE_TLV = bytes([0xEA]) + (23).to_bytes(2, "big") + b"\x01vpce-08d2bf15fac5001c9"
CRC32C_TLV = bytes([0x03]) + (4).to_bytes(2, "big") + bytes.fromhex("bce5951f")
# An NLB health check's header as captured in kubernetes/kubernetes#57250: LOCAL, "TCP over IPv4", and 84
# bytes that read as a CRC32C TLV and a NOOP TLV of 74 zero bytes, not as addresses (LOCAL skips them anyway).
NOOP_74_TLV = bytes([0x04]) + (74).to_bytes(2, "big") + bytes(74)
NLB_HEALTH_CHECK = V2_SIGNATURE + bytes.fromhex("20110054") + CRC32C_TLV + NOOP_74_TLV


def addresses(source: str, source_port: int, destination: str = "10.0.1.20", destination_port: int = 9000) -> bytes:
    """A v2 address block: source address, destination address, source port, destination port."""
    return (ipaddress.ip_address(source).packed + ipaddress.ip_address(destination).packed
            + source_port.to_bytes(2, "big") + destination_port.to_bytes(2, "big"))


def v2(command: int = PROXY, family: int = TCP4, block: bytes = b"", *, version: int = 2,
       length: int | None = None) -> bytes:
    """A v2 header around ``block`` (addresses and TLVs); ``length`` overrides the length field."""
    announced = len(block) if length is None else length
    return V2_SIGNATURE + bytes([version << 4 | command, family]) + announced.to_bytes(2, "big") + block


def v2_from(source: str, source_port: int, tlvs: bytes = b"") -> bytes:
    """What an NLB sends for a client at ``source``: PROXY over TCP, its own TLVs after the addresses."""
    family = TCP4 if ipaddress.ip_address(source).version == 4 else TCP6
    destination = "10.0.1.20" if family == TCP4 else "fd00::20"
    return v2(PROXY, family, addresses(source, source_port, destination) + tlvs)
