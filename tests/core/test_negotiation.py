"""Subprotocol negotiation over the header shapes real chargers send."""

import pytest

from adapter.ocpp.versions import Version, backend_actions, charger_actions, negotiate, parse_offered


@pytest.mark.parametrize(("headers", "expected"), [
    (["ocpp1.6"], Version.V16),
    (["ocpp1.6, ocpp2.0.1"], Version.V201),
    (["ocpp2.0.1,ocpp2.1"], Version.V21),
    ([",ocpp1.6,, ,"], Version.V16),
    (["ocpp1.6 ocpp2.0"], Version.V20),
    (["OCPP2.0.1"], Version.V201),
    (["ocpp1.6", "ocpp2.0.1"], Version.V201),
    (["ocpp1.5"], None),
    ([], None),
])
def test_newest_common_version(headers: list[str], expected: Version | None) -> None:
    assert negotiate(parse_offered(headers)) is expected


def test_fallback_applies_only_when_nothing_was_offered() -> None:
    assert negotiate([], fallback=Version.V16) is Version.V16
    assert negotiate(["ocpp9"], fallback=Version.V16) is None


def test_action_tables_cover_the_schemas() -> None:
    assert "RemoteStartTransaction" in backend_actions(Version.V16)
    assert "RequestStartTransaction" in backend_actions(Version.V201)
    assert "DataTransfer" in backend_actions(Version.V21)
    assert "BootNotification" not in backend_actions(Version.V201)
    assert "NotifyPeriodicEventStream" in charger_actions(Version.V21)
    assert Version.V20.schema_dir == Version.V201.schema_dir
