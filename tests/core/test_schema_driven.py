"""Every charger message of every version, built from its official schema and then mutated at random (seeded),
through the sans-I/O path a session takes: parse and validate, the built-in answer, normalization, the envelope;
and every answer a charger gives a back-end request, through to the response body.

A schema-valid message must come out as events that validate against their published schemas; a mutated one
must be answered or refused with a protocol error, never raise. Hypothesis-driven runs of the same idea found
three bugs (integers past 64 bits, numbers orjson cannot read, float noise in decimal steps); this keeps a
cheap, deterministic version of them in the suite.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Iterator
from typing import Any

import jsonschema
import orjson
import pytest

from adapter.bus.envelope import Origin, encode, envelope
from adapter.csms.central_system import CentralSystem, SessionState
from adapter.csms.policy import CsmsPolicy
from adapter.normalize.canonical import normalize
from adapter.normalize.event_schemas import event_schema
from adapter.normalize.transactions import TransactionBook
from adapter.ocpp.connection import IncomingCall, IncomingResult, OcppConnection, Rejected
from adapter.ocpp.versions import Version, backend_actions, charger_actions, send_only_actions
from adapter.server.requests import RequestStatus, response_body
from tests.core.test_central_system import Counter, Tokens

VERSIONS = [Version.V16, Version.V201, Version.V21]
MUTATIONS_PER_ACTION = 25
ODD_VALUES: list[Any] = [
    None, True, 0, -1, 1.5, 2**53, 2**63, 1e308, "", " ", "1", "1.0", "true", "x" * 600, "2024-01-01 10:00:00",
    "2024-01-01T10:00:00", "2024-13-45T99:99:99Z", "\u0000", "é" * 30, [], {}, [1], {"a": 1}, "accepted",
    " Accepted ", "kWh",
]


def schema_of(version: Version, action: str, *, response: bool = False) -> dict[str, Any]:
    if response:
        names = [f"{action}Response.json"]
    else:
        names = [f"{action}.json"] if version is Version.V16 else [f"{action}Request.json", f"{action}.json"]
    path = next(p for p in (version.schema_dir / n for n in names) if p.exists())
    schema: dict[str, Any] = orjson.loads(path.read_bytes())
    return schema


def instance(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """The smallest valid value: required fields only, the first enum value, one item, 1 for numbers."""
    if "$ref" in schema:
        return instance(root["definitions"][schema["$ref"].rsplit("/", 1)[1]], root)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: instance(properties[name], root) for name in schema.get("required", [])}
    if kind == "array":
        return [instance(schema["items"], root) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind == "string":
        return "2024-05-01T10:00:00Z" if schema.get("format") == "date-time" else "x"
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    assert kind == "boolean", schema
    return True


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _paths(child, (*prefix, key))


def mutate(payload: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One to three of: a field dropped, a value swapped for an odd one or for its text, an unknown field."""
    mutated = copy.deepcopy(payload)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(mutated) if p]
        if not paths or rng.random() < 0.1:
            mutated[f"unknown{rng.randint(0, 9)}"] = copy.deepcopy(rng.choice(ODD_VALUES))
            continue
        *where, key = rng.choice(paths)
        parent: Any = mutated
        for step in where:
            parent = parent[step]
        value, roll = parent[key], rng.random()
        if roll < 0.25 and isinstance(parent, dict):
            del parent[key]
        elif roll < 0.5 and isinstance(value, int | float) and not isinstance(value, bool):
            parent[key] = str(value)
        else:
            parent[key] = copy.deepcopy(rng.choice(ODD_VALUES))
    return mutated


_VALIDATORS: dict[str, jsonschema.Draft7Validator] = {}


def flow(version: Version, action: str, payload: dict[str, Any], *, strict: bool) -> Rejected | list[dict[str, Any]]:
    """What a session does with the message, minus the sockets: the refusal, or the events it publishes."""
    conn = OcppConnection(version, strict=strict)
    frame = [6 if action in send_only_actions(version) else 2, "m1", action, payload]
    incoming = conn.receive(orjson.dumps(frame))
    if isinstance(incoming, Rejected):
        return incoming
    assert isinstance(incoming, IncomingCall)
    state = SessionState("cp1", version, boot_status="Accepted")
    response = asyncio.run(CentralSystem(CsmsPolicy(), Tokens({}), Counter()).answer(state, action,
                                                                                     incoming.payload))
    if not incoming.unconfirmed:
        conn.result(incoming, response)  # raises if the built-in answer is invalid
    drafts = normalize(version, action, incoming.payload, None if incoming.unconfirmed else response,
                       TransactionBook())
    origin = Origin("cp1", version.value, "a1", "2024-05-01T10:00:00.000Z", orjson.dumps(frame))
    return [orjson.loads(encode(envelope(draft, origin, i, incoming.warnings))) for i, draft in enumerate(drafts)]


def assert_valid_events(events: list[dict[str, Any]]) -> None:
    for event in events:
        validator = _VALIDATORS.setdefault(event["type"], jsonschema.Draft7Validator(
            event_schema(event["type"]), format_checker=jsonschema.FormatChecker()))
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(event)]
        assert not errors, (event["type"], errors)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_charger_message_becomes_events_that_match_their_schemas(version: Version) -> None:
    for action in sorted(charger_actions(version)):
        schema = schema_of(version, action)
        events = flow(version, action, instance(schema, schema), strict=True)
        assert not isinstance(events, Rejected), (action, events)
        assert_valid_events(events)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("version", VERSIONS)
def test_mutated_messages_are_refused_or_normalized_never_crash(version: Version, strict: bool) -> None:
    rng = random.Random(f"{version.value}-{strict}")
    outcomes = {"refused": 0, "accepted": 0}
    for action in sorted(charger_actions(version)):
        schema = schema_of(version, action)
        valid = instance(schema, schema)
        for _ in range(MUTATIONS_PER_ACTION):
            result = flow(version, action, mutate(valid, rng), strict=strict)
            if isinstance(result, Rejected):
                outcomes["refused"] += 1
                assert result.error.message_id == "m1"
                assert result.error.kind.code(version) not in ("InternalError", "GenericError")
            else:
                outcomes["accepted"] += 1
                assert_valid_events(result)
    assert outcomes["refused"] and outcomes["accepted"], outcomes  # the mutations reach both paths


def answer_flow(version: Version, action: str, payload: dict[str, Any], *, strict: bool) -> Rejected | bytes:
    """A charger's answer to a back-end request: the refusal (which ends the request), or the response body."""
    conn = OcppConnection(version, strict=strict)
    message_id, _ = conn.start_call(action, {}, validated=True)
    answer = conn.receive(orjson.dumps([3, message_id, payload]))
    if isinstance(answer, Rejected):
        assert answer.failed is not None and answer.failed.message_id == message_id, "the request ends now"
        return answer
    assert isinstance(answer, IncomingResult) and conn.pending is None
    return response_body("cp1", "DEFAULT", "r1", action, RequestStatus.OK, payload=answer.payload)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("version", VERSIONS)
def test_charger_answers_to_every_back_end_action_are_passed_on_or_end_the_request(version: Version,
                                                                                   strict: bool) -> None:
    rng = random.Random(f"answers-{version.value}-{strict}")
    refused = 0
    for action in sorted(backend_actions(version) - send_only_actions(version)):
        schema = schema_of(version, action, response=True)
        valid = instance(schema, schema)
        body = answer_flow(version, action, valid, strict=True)
        assert isinstance(body, bytes) and orjson.loads(body)["payload"] == valid, action
        for _ in range(MUTATIONS_PER_ACTION):
            refused += isinstance(answer_flow(version, action, mutate(valid, rng), strict=strict), Rejected)
    assert refused, "the mutations reach the refusal path"
