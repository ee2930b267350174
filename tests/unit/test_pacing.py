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


class Ceiling(random.Random):
    """A random source that always draws the top (or the bottom) of the range."""

    def __init__(self, top: bool = True) -> None:
        super().__init__(0)
        self.top = top

    def uniform(self, a: float, b: float) -> float:
        return b if self.top else a


def test_a_bucket_holds_one_token_by_default_and_starts_full() -> None:
    clock = FakeClock()
    clock.now = 0.0  # a monotonic clock may start anywhere, zero included
    bucket = TokenBucket(rate=1, clock=clock)
    assert bucket.delay() == 0
    assert [bucket.reserve() for _ in range(3)] == [0, 1.0, 2.0]


def test_delay_reports_without_taking() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4, burst=1, clock=clock)
    assert [bucket.delay() for _ in range(3)] == [0, 0, 0]
    assert bucket.reserve() == 0
    assert bucket.delay() == 0.25
    clock.now += 0.1
    assert round(bucket.delay(), 3) == 0.15


def test_default_rates_send_one_message_per_second_per_number() -> None:
    from ywmessaging.config import Settings

    s = Settings()
    assert (s.send_rate_per_number, s.send_rate_per_church) == (1.0, 10.0)
    pacer = Pacer(s.send_rate_per_church, s.send_rate_per_number, clock=FakeClock())
    assert [pacer.reserve("+15550001") for _ in range(3)] == [0, 1.0, 2.0]  # no burst of two
    # Other numbers share the church's ten a second (three of its ten tokens are spent).
    waits = [pacer.reserve(f"+1555001{i}") for i in range(9)]
    assert [round(w, 3) for w in waits] == [0] * 7 + [0.1, 0.2]


def test_a_church_at_one_a_second_has_no_burst() -> None:
    pacer = Pacer(church_rate=1, number_rate=0, clock=FakeClock())
    assert [pacer.reserve(f"+1555000{i}") for i in range(3)] == [0, 1.0, 2.0]


def test_number_buckets_refill_on_the_pacers_clock() -> None:
    clock = FakeClock()
    pacer = Pacer(church_rate=0, number_rate=1, clock=clock)
    assert [pacer.reserve("+15550001") for _ in range(2)] == [0, 1.0]
    clock.now += 2.0  # the debt of one token is paid and the bucket is full again
    assert pacer.delay("+15550001") == 0
    assert pacer.reserve("+15550001") == 0


def test_pacer_delay_is_the_slower_bucket_and_takes_nothing() -> None:
    clock = FakeClock()
    pacer = Pacer(church_rate=2, number_rate=1, clock=clock)
    assert pacer.reserve("+15550001") == 0
    assert pacer.delay("+15550001") == 1.0      # the number's bucket is the slower
    assert pacer.delay("+15550002") == 0        # another number: the church has a token left
    assert pacer.reserve("+15550002") == 0
    assert pacer.delay("+15550003") == 0.5      # now the church's bucket is the slower
    assert pacer.delay("+15550003") == 0.5      # asking twice took nothing


def test_pause_of_nothing_or_less_blocks_nothing() -> None:
    clock = FakeClock()
    pacer = Pacer(church_rate=0, number_rate=0, clock=clock)
    pacer.pause("+15550001", 0)
    pacer.pause("+15550001", -5)
    assert pacer.reserve("+15550001") == 0


def test_a_later_pause_is_never_shortened_by_an_earlier_end() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=0, clock=clock)
    bucket.pause_until(clock.now + 10)
    bucket.pause_until(clock.now + 2)
    assert bucket.reserve() == 10


def test_backoff_ceiling_doubles_from_the_base_up_to_the_cap() -> None:
    ceilings = [backoff(a, rng=Ceiling()) for a in range(1, 11)]
    assert ceilings == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]  # defaults: base 2 s, cap 300 s
    assert backoff(0, rng=Ceiling()) == 2 and backoff(-3, rng=Ceiling()) == 2
    assert backoff(3, base=0.5, cap=10, rng=Ceiling()) == 2.0


def test_backoff_draws_from_zero_with_the_injected_source() -> None:
    assert backoff(5, rng=Ceiling(top=False)) == 0.0  # full jitter starts at zero
    a, b = random.Random(42), random.Random(42)
    assert [backoff(4, rng=a) for _ in range(5)] == [b.uniform(0.0, 16.0) for _ in range(5)]


def test_backoff_never_sooner_than_retry_after() -> None:
    assert backoff(1, retry_after=30, rng=Ceiling()) == 30
    assert backoff(9, retry_after=30, rng=Ceiling()) == 300    # the jitter is later still
    assert backoff(1, retry_after=None, rng=Ceiling(top=False)) == 0.0
    assert backoff(1, retry_after=0, rng=Ceiling(top=False)) == 0.0
