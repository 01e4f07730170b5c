"""The course's limiters against two libraries people use: ``limits`` and ``pyrate-limiter``.

Decision by decision, on random multi-client traces, with the libraries' clocks frozen
and moved by the test. Where the semantics differ on purpose, each test says how, shows
the difference on a hand-made case, and checks the exact relationship that remains.
"""

from __future__ import annotations

import bisect
import random
from types import SimpleNamespace

import limits.storage.memory
import pytest
from limits import RateLimitItemPerSecond
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from pyrate_limiter import AbstractClock, InMemoryBucket, Rate, RateItem, StateBucket
from pyrate_limiter import TokenBucket as PyrateTokenBucket

from sysdesign.ratelimit import SlidingWindowCounter, SlidingWindowLog, TokenBucket, client_mix

# --- limits, with a clock the test moves -----------------------------------------------


class FrozenClock:
    """Stands in for ``time.time()`` inside limits' memory storage."""

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now


class FrozenMemoryStorage(limits.storage.memory.MemoryStorage):
    """limits' ``MemoryStorage`` without its background expiry thread (which wakes every
    10 ms of real time): with a frozen clock, the strategy's own comparisons decide alone."""

    def __init__(self) -> None:
        super().__init__()
        self.timer.cancel()

    def _MemoryStorage__schedule_expiry(self) -> None:  # the name-mangled private method
        pass


@pytest.fixture
def clock(monkeypatch) -> FrozenClock:
    clock = FrozenClock()
    monkeypatch.setattr(limits.storage.memory, "time", SimpleNamespace(time=clock.time))
    return clock


def assert_no_exact_boundaries(times: list[float], window: float) -> None:
    """No request lands (within 1e-9 s) exactly ``window`` after another one."""
    for t in times:
        i = bisect.bisect_left(times, t - window - 1e-9)
        assert i == len(times) or times[i] > t - window + 1e-9, (t, window)


@pytest.mark.parametrize("seed", range(12))
def test_sliding_window_log_matches_limits_moving_window(clock, seed):
    """``limits``' moving window is a sliding log too, with one intended difference: it
    counts the closed interval ``[now - window, now]``, the course ``(now - window, now]``
    (so that retrying at ``now + retry_after`` works). On traces where no request arrives
    exactly ``window`` after another, the difference cannot matter: every decision is the
    same, the remaining count is the same, and the course's ``now + retry_after`` is
    limits' reset time."""
    rng = random.Random(seed)
    limit, window = rng.randint(1, 6), rng.choice([1, 2, 5, 10])
    trace = client_mix(duration=40, burst_size=2 * limit, seed=seed, start=rng.uniform(0, 1e6))
    assert_no_exact_boundaries([t for t, _ in trace], window)
    ours = SlidingWindowLog(limit=limit, window=window)
    theirs = MovingWindowRateLimiter(FrozenMemoryStorage())
    item = RateLimitItemPerSecond(limit, window)
    rejected = 0
    for now, key in trace:
        clock.now = now
        decision = ours.allow(key, now)
        assert theirs.hit(item, key) == bool(decision), (now, key)
        stats = theirs.get_window_stats(item, key)
        assert stats.remaining == decision.remaining
        if not decision:
            assert now + decision.retry_after == pytest.approx(stats.reset_time, abs=1e-9)
            rejected += 1
    assert rejected > 0


def test_moving_window_boundary_is_the_intended_difference(clock):
    """A request exactly one window after an admitted one: the course admits it (the old
    one has just left ``(now - window, now]``), limits does not (``[now - window, now]``)."""
    ours = SlidingWindowLog(limit=1, window=1)
    theirs = MovingWindowRateLimiter(FrozenMemoryStorage())
    item = RateLimitItemPerSecond(1, 1)
    clock.now = 10.0
    assert ours.allow("a", 10.0) and theirs.hit(item, "a")
    clock.now = 11.0
    assert ours.allow("b", 11.0) and theirs.hit(item, "b")  # other keys: no interference
    assert ours.allow("a", 11.0)
    assert not theirs.hit(item, "a")


@pytest.mark.parametrize("seed", range(12))
def test_sliding_window_counter_matches_limits(clock, seed):
    """``limits``' sliding window counter is the same algorithm: windows aligned to
    multiples of the window, the previous count weighted by the share of it still inside
    the sliding window, and "admit if ``floor(weighted) + 1 <= limit``", which for a whole
    ``limit`` is the course's ``estimate < limit``. The weight is computed in another
    order of float operations (``(1 - ((now - w) / w) % 1) * w / w`` against
    ``1 - (now / w - floor(now / w))``), a difference of a rounding error: the decisions
    can only differ where the estimate is within a rounding error of a whole number, and
    these traces (checked) never come near one. ``remaining`` is the same too.

    Traces start at ``now >= window``, like real clocks: in the very first window limits
    reads the current window's counter as the previous one too (next test)."""
    rng = random.Random(seed)
    limit, window = rng.randint(1, 6), rng.choice([1, 2, 5, 10])
    start = rng.uniform(window, 1e6)
    trace = client_mix(duration=40, burst_size=2 * limit, seed=seed, start=start)
    ours = SlidingWindowCounter(limit=limit, window=window)
    theirs = SlidingWindowCounterRateLimiter(FrozenMemoryStorage())
    item = RateLimitItemPerSecond(limit, window)
    rejected = 0
    for now, key in trace:
        estimate = ours._estimate_at(ours._states.get(key), now)
        assert estimate == round(estimate) or abs(estimate - round(estimate)) > 1e-9
        clock.now = now
        decision = ours.allow(key, now)
        assert theirs.hit(item, key) == bool(decision), (now, key, estimate)
        assert theirs.get_window_stats(item, key).remaining == decision.remaining
        rejected += not decision
    assert rejected > 0


def test_limits_sliding_counter_in_the_first_window(clock):
    """For ``now < window``, ``int((now - window) / window)`` truncates to 0, so limits'
    "previous window" key is the current one and its requests count twice. The course
    starts with an empty previous window. (Real clocks are far past the first window.)"""
    ours = SlidingWindowCounter(limit=3, window=10)
    theirs = SlidingWindowCounterRateLimiter(FrozenMemoryStorage())
    item = RateLimitItemPerSecond(3, 10)
    results = []
    for now in (1.0, 2.0, 3.0):
        clock.now = now
        results.append((bool(ours.allow("a", now)), theirs.hit(item, "a")))
    assert results == [(True, True), (True, True), (True, False)]


# --- pyrate-limiter, with an injected clock -------------------------------------------


class ManualClock(AbstractClock):
    """pyrate-limiter's clock interface: ``now()`` in integer milliseconds."""

    def __init__(self) -> None:
        self.ms = 0

    def now(self) -> int:
        return self.ms


@pytest.mark.parametrize("seed", range(12))
def test_token_bucket_matches_pyrate_limiter(seed):
    """pyrate-limiter's ``TokenBucket`` is GCRA, one "theoretical arrival time" per key in
    integer microseconds, on integer-millisecond timestamps; the course keeps ``(tokens,
    last)`` in floats. In exact arithmetic they are the same algorithm: admit iff
    ``TAT - now <= (capacity - 1) / rate`` iff ``tokens >= 1``. So on traces where both
    are exact (times on a 1/8 s grid, rates whose token interval is a whole number of
    microseconds and a power of two per second) every decision is the same, including the
    many ties on the grid; pyrate's ``retry_after_ms`` is the course's ``retry_after`` in
    milliseconds; and ``capacity - count()`` is the course's ``remaining``. (Off the grid,
    pyrate rounds times to milliseconds and intervals up to microseconds.)"""
    rng = random.Random(seed)
    capacity = rng.randint(1, 6)
    rate = rng.choice([0.5, 1, 2, 4, 8])  # tokens per second
    limit, interval_ms = (1, 2000) if rate == 0.5 else (rate, 1000)
    clock = ManualClock()
    buckets: dict[str, StateBucket] = {}
    ours = TokenBucket(capacity=capacity, refill_rate=rate)
    duration = 400 / (3 * 2 * rate)  # each of 3 keys sends twice the refill rate
    trace = sorted((rng.randrange(0, int(8 * duration)) / 8, rng.choice("abc")) for _ in range(400))
    rejected = 0
    for now, key in trace:
        if key not in buckets:
            rates = [Rate(limit, interval_ms, burst=capacity)]
            buckets[key] = StateBucket(rates, algorithm=PyrateTokenBucket(), clock=clock)
        clock.ms = round(now * 1000)
        decision = ours.allow(key, now)
        theirs = buckets[key].put_decision(RateItem(key, clock.ms))
        assert theirs.allowed == bool(decision), (now, key)
        assert capacity - buckets[key].count() == decision.remaining
        if not decision:
            assert theirs.retry_after_ms == decision.retry_after * 1000
            rejected += 1
    assert rejected > 10


@pytest.mark.parametrize("seed", range(8))
def test_sliding_window_log_matches_pyrate_limiter_off_the_boundary(seed):
    """pyrate-limiter's default bucket is a sliding log with limits' convention: the
    window ``[now - interval, now]`` includes its lower end, so its retry_after is one
    millisecond more than the exact wait. On millisecond traces where no request comes
    exactly ``window`` after another (checked in whole milliseconds), every decision is
    the same and ``retry_after_ms`` is the course's wait in milliseconds, plus 1."""
    rng = random.Random(seed)
    limit, window_ms = rng.randint(1, 5), rng.choice([500, 1000, 3000])
    trace, seen = [], set()
    for ms in sorted(rng.randrange(0, 20_000) for _ in range(300)):
        key = rng.choice("ab")
        if (ms - window_ms, key) not in seen:  # no request exactly one window after another
            trace.append((ms, key))
            seen.add((ms, key))
    ours = SlidingWindowLog(limit=limit, window=window_ms / 1000)
    buckets = {key: InMemoryBucket([Rate(limit, window_ms)]) for key in "ab"}
    rejected = 0
    for ms, key in trace:
        decision = ours.allow(key, ms / 1000)
        theirs = buckets[key].put_decision(RateItem(key, ms))
        assert theirs.allowed == bool(decision), (ms, key)
        if not decision:
            assert theirs.retry_after_ms == round(decision.retry_after * 1000) + 1
            rejected += 1
    assert rejected > 5
