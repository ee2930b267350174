"""Token buckets, the per-church/per-number pacer and the retry backoff."""

from __future__ import annotations

import random

from ywmessaging.messaging.pacing import Pacer, TokenBucket, backoff


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_spaces_reservations_at_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=1, clock=clock)
    waits = [bucket.reserve() for _ in range(5)]
    assert waits[0] == 0
    assert [round(w, 3) for w in waits[1:]] == [0.1, 0.2, 0.3, 0.4]
    clock.now += 1.0
    assert bucket.reserve() == 0  # refilled (capped at the burst)


def test_burst_allows_that_many_at_once() -> None:
    bucket = TokenBucket(rate=5, burst=5, clock=FakeClock())
    assert [bucket.reserve() for _ in range(5)] == [0, 0, 0, 0, 0]
    assert round(bucket.reserve(), 3) == 0.2


def test_zero_rate_is_unpaced_but_still_honours_a_pause() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=0, clock=clock)
    assert all(bucket.reserve() == 0 for _ in range(1000))
    bucket.pause_until(clock.now + 3)
    assert bucket.reserve() == 3


def test_pacer_takes_the_slower_of_church_and_number() -> None:
    clock = FakeClock()
    pacer = Pacer(church_rate=100, number_rate=2, clock=clock)
    waits = [pacer.reserve("+15550001") for _ in range(3)]
    assert [round(w, 3) for w in waits] == [0, 0, 0.5]  # burst 2, then 2/s
    other = pacer.reserve("+15550002")
    assert other == 0  # another number has its own bucket; the church has room


def test_pacer_pause_blocks_church_and_number() -> None:
    clock = FakeClock()
    pacer = Pacer(church_rate=0, number_rate=0, clock=clock)
    pacer.pause("+15550001", 2.5)
    assert pacer.reserve("+15550001") == 2.5
    assert pacer.reserve("+15550002") == 2.5  # the church bucket is paused too
    clock.now += 3
    assert pacer.reserve("+15550001") == 0


def test_backoff_grows_is_capped_jittered_and_honours_retry_after() -> None:
    rng = random.Random(7)
    samples = [backoff(a, base=1, cap=16, rng=rng) for a in range(1, 9) for _ in range(50)]
    assert all(0 <= s <= 16 for s in samples)
    first = [backoff(1, base=1, cap=16, rng=rng) for _ in range(200)]
    late = [backoff(8, base=1, cap=16, rng=rng) for _ in range(200)]
    assert max(first) <= 1 and max(late) > 8  # exponential ceiling, capped
    assert len({round(s, 6) for s in late}) > 100  # jittered, not a fixed schedule
    assert backoff(1, base=1, cap=16, retry_after=30, rng=rng) == 30
