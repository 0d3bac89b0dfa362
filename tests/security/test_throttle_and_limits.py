import pytest

from adapter.security.limits import TokenBucket
from adapter.security.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_in_a_window_block_for_the_backoff():
    clock = Clock()
    throttle = Throttle(max_failures=5, window_s=60, backoff_s=30, clock=clock)
    for _ in range(4):
        throttle.failure("CP-1")
    assert throttle.retry_after("CP-1") == 0
    throttle.failure("CP-1")
    assert throttle.retry_after("CP-1") == 30
    assert throttle.retry_after("CP-2") == 0
    clock.now += 29
    assert throttle.retry_after("CP-1") == 1
    clock.now += 1
    assert throttle.retry_after("CP-1") == 0
    throttle.failure("CP-1")  # counting starts afresh after a block
    assert throttle.retry_after("CP-1") == 0


def test_failures_outside_the_window_do_not_add_up():
    clock = Clock()
    throttle = Throttle(max_failures=3, window_s=60, clock=clock)
    throttle.failure("CP-1")
    throttle.failure("CP-1")
    clock.now += 61
    throttle.failure("CP-1")
    assert throttle.retry_after("CP-1") == 0


def test_success_forgets_failures():
    throttle = Throttle(max_failures=2, clock=Clock())
    throttle.failure("CP-1")
    throttle.success("CP-1")
    throttle.failure("CP-1")
    assert throttle.retry_after("CP-1") == 0


def test_tracked_ids_are_bounded():
    throttle = Throttle(max_failures=1, max_keys=2, clock=Clock())
    for cid in ("a", "b", "c"):
        throttle.failure(cid)
    assert [throttle.retry_after(cid) > 0 for cid in ("a", "b", "c")] == [False, True, True]


def test_token_bucket_allows_a_burst_then_the_rate():
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.1
    assert [bucket.allow() for _ in range(2)] == [True, False]
    clock.now += 100  # refills no further than the burst
    assert sum(bucket.allow() for _ in range(10)) == 3


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (5, 0.5)])
def test_token_bucket_refuses_bad_settings(rate, burst):
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate, burst)
