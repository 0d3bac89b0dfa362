"""Schema validation with the official OCPP JSON schemas, compiled once per (version, action, direction).

Two validators share the work. jsonschema-rs gives the verdict: it answers "valid?" for a 1.6 MeterValues in
0.9 us, where the Python code fastjsonschema generates takes 8.6 us alone and ~11% of the event loop's samples
in a profiled adapter, and nearly every message a charger sends is valid. Only a message it rejects goes
to fastjsonschema, whose errors name the rule and the path that lenient repairs and CALLERROR details need.
Both follow the draft each schema names (1.6: a float is never an integer; 2.x: 1.0 is) and check date-time
formats, so what rs accepts fastjsonschema accepts too (``tests/core/test_validation_agreement.py``).

Strict mode turns any violation into the version's CALLERROR code. Lenient mode repairs what has one clear
meaning (a number sent as a string, wrong enum case, an over-long string, a timestamp without zone, an unknown
field) and reports each repair as a warning; anything else is still an error.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Container
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

import fastjsonschema
import jsonschema_rs
import orjson

from adapter.ocpp.errors import ErrorKind, OcppError
from adapter.ocpp.versions import Version

_MAX_REPAIRS = 32
_RULE_KIND = {
    "required": ErrorKind.OCCURRENCE,
    "minItems": ErrorKind.OCCURRENCE,
    "maxItems": ErrorKind.OCCURRENCE,
    "type": ErrorKind.TYPE,
    "additionalProperties": ErrorKind.FORMAT,
}


class CompiledSchema:
    """jsonschema-rs compiles a schema in ~0.1 ms; fastjsonschema takes 4 ms on average and up to 66 ms (2.1
    RequestStartTransaction), a stall of the event loop, so its explainer is only built for a first rejection."""

    __slots__ = ("_explainer", "_schema", "_validator", "accepts", "integral_floats_valid")

    def __init__(self, schema: dict[str, Any]) -> None:
        # Draft 6 (all of 2.x, some of 1.6) counts 1.0 as an integer, draft 4 does not. Compiled as draft 4, the
        # two drafts differing in nothing else these schemas use, so that a 1.0 is found and written as 1: passed
        # on, it keyed a shadow entry "1.0" beside "1", and a float in an integer column breaks an Athena query.
        self.integral_floats_valid = "draft-04" not in str(schema.get("$schema", ""))
        schema["$schema"] = "http://json-schema.org/draft-04/schema#"
        self._validator = jsonschema_rs.validator_for(schema, validate_formats=True)
        self.accepts: Callable[[Any], bool] = self._validator.is_valid
        self._schema = schema
        self._explainer: Callable[[Any], Any] | None = None

    def explain(self, payload: Any) -> None:
        """Raise fastjsonschema.JsonSchemaValueException naming the rule and path, if ``payload`` is invalid.

        fastjsonschema's date-time check is laxer than RFC 3339 (it passes a ``+0200`` offset and a ``:60``
        second); what it lets through, jsonschema-rs's error describes in the same terms."""
        if self._explainer is None:
            self._explainer = fastjsonschema.compile(self._schema, use_default=False)
        self._explainer(payload)
        for error in self._validator.iter_errors(payload):
            raise _rs_error(error, self._schema)


def _rs_error(error: jsonschema_rs.ValidationError, schema: dict[str, Any]) -> fastjsonschema.JsonSchemaValueException:
    *where, rule = [str(part) for part in error.schema_path]
    definition: Any = schema
    for part in where:
        definition = definition[int(part) if isinstance(definition, list) else part]
    name = "data" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.instance_path)
    return fastjsonschema.JsonSchemaValueException(f"{name} {error.message}", None, name, definition, rule)


def _schema_file(version: Version, action: str, response: bool) -> str:
    if version is Version.V16:
        return f"{action}Response.json" if response else f"{action}.json"
    return f"{action}{'Response' if response else 'Request'}.json"


@cache
def compiled(version: Version, action: str, response: bool) -> CompiledSchema | None:
    """``None`` when the version defines no such action."""
    path = version.schema_dir / _schema_file(version, action, response)
    if not path.exists() and not response:
        path = version.schema_dir / f"{action}.json"  # 2.1 SEND-only messages have no Request suffix
    if not path.exists():
        return None
    schema = orjson.loads(path.read_bytes())
    schema.pop("$id", None)
    _bound_integers(schema)
    positive = _POSITIVE.get((version.is_2x, path.name))
    if positive is not None:
        schema["properties"][positive]["minimum"] = 1
    return CompiledSchema(schema)


# Non-negative in every version's specification, but only 2.1's schemas say so: 1.6 and 2.0.1 accepted a
# connector -1, which became EVSE -1 in the events.
_NON_NEGATIVE = frozenset({"connectorId", "evseId"})

# Where 0, the charger as a whole, has no meaning, the specifications say "> 0": 1.6 in its text, 2.x in the
# descriptions, and 2.1's schemas as minimum 1 (these three only: its EVSEType.id, described "> 0" too, keeps
# minimum 0). Keyed by (a 2.x version, schema file).
_POSITIVE = {
    (False, "StartTransaction.json"): "connectorId",
    (False, "RemoteStartTransaction.json"): "connectorId",
    (True, "RequestStartTransactionRequest.json"): "evseId",
    (True, "NotifyEVChargingNeedsRequest.json"): "evseId",
    (True, "NotifyEVChargingScheduleRequest.json"): "evseId",
}


def _bound_integers(node: Any, name: str | None = None) -> None:
    """Integers within 64 bits signed, the most MongoDB and SQLite hold: orjson reads up to 2**64 - 1 exactly,
    so an id past 2**63 passed the schema, its events went out, and its transaction failed to store."""
    if isinstance(node, list):
        for child in node:
            _bound_integers(child)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "integer":
        node.setdefault("minimum", 0 if name in _NON_NEGATIVE else -(2**63))
        node.setdefault("maximum", 2**63 - 1)
    for key, child in node.items():
        if key == "properties" and isinstance(child, dict):
            for field, schema in child.items():
                _bound_integers(schema, field)
        else:
            _bound_integers(child)


def _locate(payload: Any, path: list[str]) -> tuple[Any, str | int] | None:
    """Parent container and key of the value at a fastjsonschema error path (``['data', 'a', '0']``)."""
    node = payload
    keys: list[str | int] = [int(p) if isinstance(node, list) or p.isdigit() else p for p in path[1:]]
    if not keys:
        return None
    for key in keys[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node, keys[-1]


_NUMBER = re.compile(r"^\s*-?\d+(\.\d+)?([eE][-+]?\d+)?\s*$")
# Fields naming something (idTag, idToken, transactionId, vendorId, serial numbers, ICCID): cut short, such a
# value names something else, e.g. a different, authorized token. Free text (info, firmware versions) is cut.
_IDENTIFIER = re.compile(r"(?i).*(id|idtag|token|serialnumber|iccid|imsi)$")


# The largest integer no other integer rounds to as a double. A larger integral double may be a bigger integer
# already rounded (orjson reads integers beyond 64 bits as doubles): "repaired", it would name a different
# number, and one the event encoder cannot write.
_SAFE_INT = 2**53 - 1


def _exact_int(number: float) -> bool:
    return number.is_integer() and abs(number) <= _SAFE_INT


def _repair_type(value: Any, expected: Any) -> tuple[bool, Any]:
    types = expected if isinstance(expected, list) else [expected]
    if isinstance(value, str) and _NUMBER.match(value) and math.isfinite(number := float(value)):
        if "integer" in types and _exact_int(number):
            return True, int(number)
        if "number" in types:
            return True, number
    if "string" in types and isinstance(value, int | float) and not isinstance(value, bool):
        return True, str(value)
    if "boolean" in types and isinstance(value, str) and value.lower() in ("true", "false"):
        return True, value.lower() == "true"
    if "integer" in types and isinstance(value, float) and _exact_int(value):
        return True, int(value)
    return False, value


def _integral_float(exc: fastjsonschema.JsonSchemaValueException, payload: Any) -> bool:
    """Write an integral float in an integer field (1.0) as the integer in place; False if that is not the error."""
    expected = exc.rule_definition
    if exc.rule != "type" or "integer" not in (expected if isinstance(expected, list) else [expected]):
        return False
    located = _locate(payload, list(exc.path or []))
    if located is None:
        return False
    parent, key = located
    value = parent[key]
    if not (isinstance(value, float) and _exact_int(value)):
        return False
    parent[key] = int(value)
    return True


def _repair_multiple(value: Any, step: Any) -> tuple[bool, Any]:
    """Binary floating point misses a decimal step: a charger that computes 68 * 0.1 sends 6.800000000000001,
    which is no multiple of 0.1 (1.6 schedule limits). Within a billionth, the nearest multiple is meant."""
    numbers = all(isinstance(n, int | float) and not isinstance(n, bool) for n in (value, step))
    if not numbers or step <= 0 or not math.isfinite(quotient := value / step):
        return False, value
    nearest = float(Decimal(repr(step)) * round(quotient))
    return math.isclose(nearest, value, rel_tol=1e-9), nearest


def _repair_datetime(value: Any) -> tuple[bool, Any]:
    if not isinstance(value, str):
        return False, value
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        return False, value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return True, parsed.isoformat().replace("+00:00", "Z")


def _repair(exc: fastjsonschema.JsonSchemaValueException, payload: Any) -> str | None:
    """Fix ``payload`` in place at the error; return a warning, or ``None`` if the meaning is not clear."""
    located = _locate(payload, list(exc.path or []))
    rule, definition = exc.rule, exc.rule_definition
    if rule == "additionalProperties":
        target = payload
        if located is not None:
            parent, key = located
            target = parent[key]
        if not isinstance(target, dict) or not isinstance(exc.definition, dict):
            return None
        allowed = set(exc.definition.get("properties", {}))
        extra = sorted(set(target) - allowed)
        for key in extra:
            del target[key]
        return f"{exc.name}: dropped unknown field(s) {', '.join(extra)}"
    if located is None:
        return None
    parent, key = located
    value = parent[key]
    fixed = False
    if rule == "type":
        fixed, value = _repair_type(value, definition)
    elif rule == "multipleOf":
        fixed, value = _repair_multiple(value, definition)
    elif rule == "enum" and isinstance(value, str):
        match = [e for e in definition if isinstance(e, str) and e.lower() == value.strip().lower()]
        fixed, value = (True, match[0]) if match else (False, value)
    elif rule == "maxLength" and isinstance(value, str) and not (isinstance(key, str) and _IDENTIFIER.match(key)):
        fixed, value = True, value[:definition]
    elif rule == "format" and definition == "date-time":
        fixed, value = _repair_datetime(value)
    if not fixed:
        return None
    original = parent[key]
    parent[key] = value
    return f"{exc.name}: {original!r} normalized to {value!r} ({rule})"


def validate(version: Version, action: str, payload: dict[str, Any], *, response: bool,
             strict: bool, message_id: str = "-1", repairs: Container[str] | None = None
             ) -> tuple[dict[str, Any], list[str]]:
    """Return the (possibly normalized) payload and the warnings; raise ``OcppError`` when it can't be used.

    Lenient mode repairs what breaks any rule, or only the rules in ``repairs`` when given."""
    check = compiled(version, action, response)
    if check is None:
        raise OcppError(ErrorKind.NOT_IMPLEMENTED, f"{action} is not an OCPP {version.value} action", message_id)
    if check.accepts(payload):
        return payload, []
    try:
        check.explain(payload)
        return payload, []
    except fastjsonschema.JsonSchemaValueException as first:
        error = first
    repaired = copy.deepcopy(payload)
    warnings: list[str] = []
    for _ in range(_MAX_REPAIRS):
        # An integral float is valid in a draft-6 schema: written as the integer in every mode, with no warning.
        if not (check.integral_floats_valid and _integral_float(error, repaired)):
            refused = strict or (repairs is not None and error.rule not in repairs)
            if refused or (warning := _repair(error, repaired)) is None:
                raise _as_error(error, message_id)
            warnings.append(warning)
        try:
            check.explain(repaired)
            return repaired, warnings
        except fastjsonschema.JsonSchemaValueException as again:
            error = again
    raise _as_error(error, message_id)


def _as_error(exc: fastjsonschema.JsonSchemaValueException, message_id: str) -> OcppError:
    kind = _RULE_KIND.get(exc.rule or "", ErrorKind.PROPERTY)
    return OcppError(kind, exc.message, message_id, {"path": exc.name, "rule": exc.rule})
