"""OCPP-J error codes, spelled per version."""

from __future__ import annotations

import enum

from adapter.ocpp.versions import Version


class ErrorKind(enum.Enum):
    """Version-neutral names; ``code()`` gives the spelling a version expects on the wire."""

    FORMAT = "format"
    RPC_FRAMEWORK = "rpc"
    MESSAGE_TYPE_NOT_SUPPORTED = "message_type"
    NOT_IMPLEMENTED = "not_implemented"
    NOT_SUPPORTED = "not_supported"
    INTERNAL = "internal"
    PROTOCOL = "protocol"
    SECURITY = "security"
    OCCURRENCE = "occurrence"
    PROPERTY = "property"
    TYPE = "type"
    GENERIC = "generic"

    def code(self, version: Version) -> str:
        if version is Version.V16:
            return _V16[self]
        return _V2[self]


_V2 = {
    ErrorKind.FORMAT: "FormatViolation",
    ErrorKind.RPC_FRAMEWORK: "RpcFrameworkError",
    ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED: "MessageTypeNotSupported",
    ErrorKind.NOT_IMPLEMENTED: "NotImplemented",
    ErrorKind.NOT_SUPPORTED: "NotSupported",
    ErrorKind.INTERNAL: "InternalError",
    ErrorKind.PROTOCOL: "ProtocolError",
    ErrorKind.SECURITY: "SecurityError",
    ErrorKind.OCCURRENCE: "OccurrenceConstraintViolation",
    ErrorKind.PROPERTY: "PropertyConstraintViolation",
    ErrorKind.TYPE: "TypeConstraintViolation",
    ErrorKind.GENERIC: "GenericError",
}
# 1.6 has no RPC-framework or message-type codes (a bad frame is a FormationViolation) and spells
# "Occurence" with one r.
_V16 = {
    **_V2,
    ErrorKind.FORMAT: "FormationViolation",
    ErrorKind.RPC_FRAMEWORK: "FormationViolation",
    ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED: "FormationViolation",
    ErrorKind.OCCURRENCE: "OccurenceConstraintViolation",
}


class OcppError(Exception):
    """A failure that becomes a CALLERROR to the peer."""

    def __init__(self, kind: ErrorKind, description: str, message_id: str = "-1",
                 details: dict[str, object] | None = None) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description
        self.message_id = message_id
        self.details = details or {}
