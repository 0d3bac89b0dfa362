"""Per-connection OCPP-J state machine: one outstanding CALL per direction, correlation, validation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from adapter.ocpp import frames
from adapter.ocpp.errors import ErrorKind, OcppError
from adapter.ocpp.frames import Call, CallError, CallResult
from adapter.ocpp.validation import validate
from adapter.ocpp.versions import Version, all_actions, charger_actions, send_only_actions


@dataclass(slots=True)
class IncomingCall:
    """A charger request, validated; answer it with ``result`` or ``error`` (unless ``unconfirmed``)."""

    message_id: str
    action: str
    payload: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    unconfirmed: bool = False


@dataclass(slots=True)
class IncomingResult:
    message_id: str
    action: str
    payload: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class IncomingError:
    message_id: str
    action: str
    code: str
    description: str
    details: dict[str, Any]


@dataclass(slots=True)
class Rejected:
    """The peer's message could not be used; ``reply`` (if any) is the CALLERROR to send back."""

    error: OcppError
    reply: str | None
    failed: IncomingError | None = None  # the outstanding CALL this unusable answer ends, as a call error


@dataclass(slots=True)
class Unmatched:
    """A response whose id matches no outstanding CALL: logged and dropped."""

    message_id: str
    frame: CallResult | CallError


Incoming = IncomingCall | IncomingResult | IncomingError | Rejected | Unmatched


@dataclass(slots=True)
class PendingCall:
    message_id: str
    action: str


class CallInProgress(RuntimeError):
    """OCPP-J allows one outstanding CALL per direction; callers queue behind it."""


class OcppConnection:
    def __init__(self, version: Version, *, strict: bool = False) -> None:
        self.version = version
        self.strict = strict
        self.pending: PendingCall | None = None
        self._charger_actions = charger_actions(version)
        self._known_actions = all_actions(version)
        self._send_only = send_only_actions(version)

    def receive(self, text: str | bytes) -> Incoming:
        try:
            frame = frames.parse(text, self.version)
        except frames.MalformedResponse as exc:
            return self._unusable_response(exc, result=exc.result)
        except frames.UnrepresentableCall as exc:
            return Rejected(exc, None if exc.unconfirmed else self.error_frame(exc))
        except OcppError as exc:
            return Rejected(exc, self.error_frame(exc))
        if isinstance(frame, Call):
            return self._receive_call(frame)
        pending = self.pending
        if pending is None or pending.message_id != frame.message_id:
            return Unmatched(frame.message_id, frame)
        if isinstance(frame, CallError):
            self.pending = None
            return IncomingError(frame.message_id, pending.action, frame.code, frame.description, frame.details)
        try:
            payload, warnings = validate(self.version, pending.action, frame.payload, response=True,
                                         strict=self.strict, message_id=frame.message_id)
        except OcppError as exc:
            return self._unusable_response(exc, result=True)
        self.pending = None
        return IncomingResult(frame.message_id, pending.action, payload, warnings)

    def _unusable_response(self, exc: OcppError, *, result: bool) -> Rejected:
        """Ends the outstanding CALL it answers (so its requester hears now, not at its deadline). Never
        answered with a CALLERROR; 2.1 has CALLRESULTERROR for a CALLRESULT."""
        reply = None
        if result and self.version is Version.V21:
            reply = frames.dumps(CallError(exc.message_id, exc.kind.code(self.version), exc.description,
                                           exc.details, about_result=True))
        pending, failed = self.pending, None
        if pending is not None and pending.message_id == exc.message_id:
            self.pending = None
            failed = IncomingError(exc.message_id, pending.action, exc.kind.code(self.version),
                                   f"the charger's answer was unusable: {exc.description}", exc.details)
        return Rejected(exc, reply, failed)

    def _receive_call(self, call: Call) -> Incoming:
        if call.action not in self._charger_actions:
            kind = ErrorKind.NOT_SUPPORTED if call.action in self._known_actions else ErrorKind.NOT_IMPLEMENTED
            exc = OcppError(kind, f"{call.action} is not accepted from a charger in OCPP {self.version.value}",
                            call.message_id)
            return Rejected(exc, None if call.unconfirmed else self.error_frame(exc))
        if not call.unconfirmed and call.action in self._send_only:
            exc = OcppError(ErrorKind.NOT_SUPPORTED, f"{call.action} is a SEND message in OCPP "
                            f"{self.version.value}; it has no CALL form", call.message_id)
            return Rejected(exc, self.error_frame(exc))
        try:
            payload, warnings = validate(self.version, call.action, call.payload, response=False,
                                         strict=self.strict, message_id=call.message_id)
        except OcppError as exc:
            return Rejected(exc, None if call.unconfirmed else self.error_frame(exc))
        return IncomingCall(call.message_id, call.action, payload, warnings, call.unconfirmed)

    def start_call(self, action: str, payload: dict[str, Any], *, validated: bool = False) -> tuple[str, str]:
        """Validate an outgoing request strictly (unless the caller just did) and mark it outstanding;
        returns (message id, frame text)."""
        if self.pending is not None:
            raise CallInProgress(self.pending.action)
        if not validated:
            validate(self.version, action, payload, response=False, strict=True)
        message_id = str(uuid.uuid4())
        self.pending = PendingCall(message_id, action)
        return message_id, frames.dumps(Call(message_id, action, payload))

    def abandon_call(self, message_id: str) -> None:
        """The caller gave up (deadline passed); a late answer will be reported as unmatched."""
        if self.pending is not None and self.pending.message_id == message_id:
            self.pending = None

    def result(self, call: IncomingCall, payload: dict[str, Any]) -> str:
        """Everything the adapter sends is exact: the answer is validated strictly."""
        validate(self.version, call.action, payload, response=True, strict=True, message_id=call.message_id)
        return frames.dumps(CallResult(call.message_id, payload))

    def error_frame(self, exc: OcppError) -> str:
        return frames.dumps(CallError(exc.message_id, exc.kind.code(self.version), exc.description, exc.details))
