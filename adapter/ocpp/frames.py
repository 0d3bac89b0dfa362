"""OCPP-J frames: parsing text into typed frames and serializing them back."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

import orjson

from adapter.ocpp.errors import ErrorKind, OcppError
from adapter.ocpp.versions import Version

MAX_MESSAGE_ID = 36


class MessageType(enum.IntEnum):
    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4
    CALLRESULTERROR = 5  # 2.1: the receiver of a CALLRESULT reports it could not process it
    SEND = 6  # 2.1: unconfirmed message, never answered


_V21_ONLY = {MessageType.CALLRESULTERROR, MessageType.SEND}


@dataclass(slots=True)
class Call:
    message_id: str
    action: str
    payload: dict[str, Any]
    unconfirmed: bool = False  # a 2.1 SEND


@dataclass(slots=True)
class CallResult:
    message_id: str
    payload: dict[str, Any]


@dataclass(slots=True)
class CallError:
    message_id: str
    code: str
    description: str
    details: dict[str, Any]
    about_result: bool = False  # a 2.1 CALLRESULTERROR


Frame = Call | CallResult | CallError


class MalformedResponse(OcppError):
    """A CALLRESULT or CALLERROR of the wrong shape: never answered with a CALLERROR, which only a CALL gets."""

    def __init__(self, description: str, message_id: str, *, result: bool,
                 kind: ErrorKind = ErrorKind.RPC_FRAMEWORK) -> None:
        super().__init__(kind, description, message_id)
        self.result = result


class UnrepresentableCall(OcppError):
    """A CALL or SEND holding a number the adapter cannot represent; a SEND is never answered."""

    def __init__(self, description: str, message_id: str, *, unconfirmed: bool) -> None:
        super().__init__(ErrorKind.PROPERTY, description, message_id)
        self.unconfirmed = unconfirmed


def _readable_id(frame: list[Any]) -> str:
    if len(frame) > 1 and isinstance(frame[1], str) and 0 < len(frame[1]) <= MAX_MESSAGE_ID:
        return frame[1]
    return "-1"


def parse(text: str | bytes, version: Version) -> Frame:
    """Parse one WebSocket message; raise ``OcppError`` carrying the id to answer with (``-1`` if unreadable)."""
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        _refuse_out_of_range(text, version)
        raise OcppError(ErrorKind.FORMAT, f"message is not valid JSON: {exc}") from None
    return _frame(frame, version)


def _refuse_out_of_range(text: str | bytes, version: Version) -> None:
    """Valid JSON that orjson refuses holds a number beyond a double (``1e400``) or an unpaired UTF-16 surrogate
    escape (``"\\ud800"``). Its message id is readable, so the charger can tell which message was refused: a
    CALL gets PropertyConstraintViolation, a response ends the CALL it answers. Returns if the text is not JSON
    (or holds an integer of thousands of digits, which Python's own parser refuses too)."""
    try:
        frame = json.loads(text, parse_constant=_not_json)
    except ValueError:  # also JSONDecodeError and the interpreter's limit on integer digits
        return
    about = "a value the adapter cannot represent: a number beyond a double's range or an unpaired surrogate"
    parsed = _frame(frame, version)
    if isinstance(parsed, Call):
        raise UnrepresentableCall(about, parsed.message_id, unconfirmed=parsed.unconfirmed)
    raise MalformedResponse(about, parsed.message_id, result=isinstance(parsed, CallResult),
                            kind=ErrorKind.PROPERTY)


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _frame(frame: Any, version: Version) -> Frame:
    if not isinstance(frame, list) or not frame:
        raise OcppError(ErrorKind.RPC_FRAMEWORK, "message is not a JSON array")
    message_id = _readable_id(frame)
    raw_type = frame[0]
    if not isinstance(raw_type, int) or isinstance(raw_type, bool):
        raise OcppError(ErrorKind.RPC_FRAMEWORK, "message type is not an integer", message_id)
    try:
        mtype = MessageType(raw_type)
    except ValueError:
        raise OcppError(ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED, f"message type {raw_type} is unknown",
                        message_id) from None
    if mtype in _V21_ONLY and version is not Version.V21:
        raise OcppError(ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED,
                        f"message type {raw_type} needs OCPP 2.1", message_id)
    if message_id == "-1":
        raise OcppError(ErrorKind.RPC_FRAMEWORK,
                        f"message id must be a string of 1-{MAX_MESSAGE_ID} characters")
    if mtype in (MessageType.CALL, MessageType.SEND):
        if len(frame) != 4 or not isinstance(frame[2], str) or not isinstance(frame[3], dict):
            raise OcppError(ErrorKind.RPC_FRAMEWORK, "CALL must be [2, id, action, {payload}]", message_id)
        return Call(message_id, frame[2], frame[3], unconfirmed=mtype is MessageType.SEND)
    if mtype is MessageType.CALLRESULT:
        if len(frame) != 3 or not isinstance(frame[2], dict):
            raise MalformedResponse("CALLRESULT must be [3, id, {payload}]", message_id, result=True)
        return CallResult(message_id, frame[2])
    if (len(frame) not in (4, 5) or not isinstance(frame[2], str) or not isinstance(frame[3], str)
            or (len(frame) == 5 and not isinstance(frame[4], dict))):
        raise MalformedResponse("CALLERROR must be [4, id, code, description, {details}]", message_id,
                                result=False)
    details = frame[4] if len(frame) == 5 else {}
    return CallError(message_id, frame[2], frame[3], details,
                     about_result=mtype is MessageType.CALLRESULTERROR)


def dumps(frame: Frame) -> str:
    if isinstance(frame, Call):
        mtype = MessageType.SEND if frame.unconfirmed else MessageType.CALL
        body: list[Any] = [mtype, frame.message_id, frame.action, frame.payload]
    elif isinstance(frame, CallResult):
        body = [MessageType.CALLRESULT, frame.message_id, frame.payload]
    else:
        mtype = MessageType.CALLRESULTERROR if frame.about_result else MessageType.CALLERROR
        body = [mtype, frame.message_id, frame.code, frame.description[:255], frame.details]
    return orjson.dumps(body).decode()
