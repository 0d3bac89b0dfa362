import re

import pytest

from adapter.security.identity import validate_charger_id, validate_id_token


@pytest.mark.parametrize("cid", ["CP-1", "a", "AA:BB:CC:DD:EE:FF", "site_1.cp-02", "x" * 48, "..a", "my-adapter-1"])
def test_valid_charger_ids_pass_unchanged(cid):
    assert validate_charger_id(cid) == cid


@pytest.mark.parametrize(("cid", "why"), [
    ("", "empty"),
    ("x" * 49, "49 characters long; at most 48"),
    ("a/b", "'/'"), ("a+b", "'+'"), ("a#b", "'#'"), ("a\x00b", r"'\x00'"), ("a b", "' '"),
    ("a\tb", r"'\t'"), ("a\nb", r"'\n'"), ("caf\u00e9", "'\u00e9'"), ("a@b", "'@'"), ("a%2Fb", "'%'"),
    (".", "dots only"), ("..", "dots only"), ("adapter-host-1-control", "may not start with 'adapter-'"),
])
def test_invalid_charger_ids_are_refused_with_the_reason(cid, why):
    with pytest.raises(ValueError, match=re.escape(why)):
        validate_charger_id(cid)


@pytest.mark.parametrize("token", ["04A2B3C4D5E6F7", "NL-TNM-C12345678-X", "a" * 36, "x!~"])
def test_valid_id_tokens(token):
    assert validate_id_token(token) == token


@pytest.mark.parametrize(("token", "why"), [("", "empty"), ("a" * 37, "at most 36"), ("a b", "' '"),
                                            ("tag\u00e9", "'\u00e9'")])
def test_invalid_id_tokens(token, why):
    with pytest.raises(ValueError, match=re.escape(why)):
        validate_id_token(token)
