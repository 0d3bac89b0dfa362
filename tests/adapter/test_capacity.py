"""How many chargers the open-file limit allows, and lifting the soft limit to the hard one."""

from __future__ import annotations

import resource

import pytest

from adapter.server.capacity import RESERVED_FILES, charger_capacity, raise_open_file_limit


def test_per_charger_mode_takes_two_files_per_charger() -> None:
    assert charger_capacity(20_000, per_charger_mqtt=True) == (20_000 - RESERVED_FILES) // 2
    assert charger_capacity(20_000, per_charger_mqtt=False) == 20_000 - RESERVED_FILES
    assert charger_capacity(100, per_charger_mqtt=True) == 1, "a tiny limit still admits one"


def test_the_soft_limit_is_lifted_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 256:
        pytest.fail(f"hard open-file limit {hard} is too low for this test")
    lowered = 256
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        limit = raise_open_file_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == limit
        assert limit > lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
