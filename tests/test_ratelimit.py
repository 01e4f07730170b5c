"""sysdesign.ratelimit, in one process: each algorithm by hand, retry_after exactly, bounded
memory, the leaking bucket against its SimPy model, and the synthetic traces."""

from __future__ import annotations

import copy
import math
import random
import re

import pytest

from sysdesign.ratelimit import (
    Decision,
    FixedWindow,
    LeakingBucket,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
    bursty_times,
    client_mix,
    one_client,
    poisson_times,
    replay,
    simulate_leaking_bucket,
)


def admitted(decisions) -> list[bool]:
    return [bool(d) for d in decisions]


def burst(limiter, key, now, n) -> list[Decision]:
    return [limiter.allow(key, now) for _ in range(n)]


# --- parameters, keys and time are checked ---------------------------------------------

CONSTRUCTORS = {
    TokenBucket: ("capacity", "refill_rate"),
    LeakingBucket: ("capacity", "leak_rate"),
    FixedWindow: ("limit", "window"),
    SlidingWindowLog: ("limit", "window"),
    SlidingWindowCounter: ("limit", "window"),
}


@pytest.mark.parametrize("cls", CONSTRUCTORS)
@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3", None])
def test_count_parameter_must_be_a_whole_number(cls, bad):
    count, rate = CONSTRUCTORS[cls]
    message = rf"{count} must be a whole number of at least 1, got {re.escape(repr(bad))}"
    with pytest.raises(ValueError, match=message):
        cls(**{count: bad, rate: 1.0})


@pytest.mark.parametrize("cls", CONSTRUCTORS)
@pytest.mark.parametrize("bad", [0, -0.5, math.inf, math.nan, True, "1", None])
def test_rate_or_window_must_be_a_positive_number(cls, bad):
    count, rate = CONSTRUCTORS[cls]
    message = rf"{rate} must be a finite number greater than 0, got {re.escape(repr(bad))}"
    with pytest.raises(ValueError, match=message):
        cls(**{count: 3, rate: bad})


def test_good_parameters_are_kept_and_shown():
    bucket = TokenBucket(capacity=10, refill_rate=2.5)
    assert (bucket.capacity, bucket.refill_rate) == (10, 2.5)
    assert repr(bucket) == "TokenBucket(capacity=10, refill_rate=2.5)"
    with pytest.raises(TypeError):
        TokenBucket(10, 2.5)  # keyword-only: which number is which must be visible


@pytest.mark.parametrize("cls", CONSTRUCTORS)
def test_bad_now_and_key_are_named(cls):
    count, rate = CONSTRUCTORS[cls]
    limiter = cls(**{count: 2, rate: 1})
    for bad in (-1, math.nan, math.inf, True, "5", None):
        with pytest.raises(ValueError, match=r"now must be a finite number of seconds, at least 0"):
            limiter.allow("a", bad)
    with pytest.raises(ValueError, match=r"key must be a string .*got 42"):
        limiter.allow(42, 0.0)


@pytest.mark.parametrize("cls", CONSTRUCTORS)
def test_time_must_not_go_backwards(cls):
    """One process, one clock: an earlier ``now`` (for any key) is a bug, and says so."""
    count, rate = CONSTRUCTORS[cls]
    limiter = cls(**{count: 2, rate: 1})
    limiter.allow("a", 5.0)
    limiter.allow("b", 5.0)  # the same instant is fine
    with pytest.raises(ValueError, match=r"now must not go backwards: got 4.5 after 5.0"):
        limiter.allow("c", 4.5)


def test_decision_is_truthy_when_admitted():
    assert Decision(True, 3, 0.0) and not Decision(False, 0, 1.5)
    assert Decision(True, 0, 0.0).departs_at is None


# --- each algorithm by hand ------------------------------------------------------------


def test_token_bucket_by_hand():
    bucket = TokenBucket(capacity=3, refill_rate=2)  # a token every 0.5 s
    first = burst(bucket, "a", 0.0, 4)
    assert admitted(first) == [True, True, True, False]
    assert [d.remaining for d in first] == [2, 1, 0, 0]
    assert first[-1].retry_after == 0.5
    assert bucket.allow("a", 0.25) == Decision(False, 0, 0.25)  # half a token
    assert bucket.allow("a", 0.5) == Decision(True, 0, 0.0)  # one token, spent
    assert bucket.allow("a", 1.25) == Decision(True, 0, 0.0)  # 1.5 tokens: 0.5 left
    assert bucket.allow("a", 1.25) == Decision(False, 0, 0.25)
    # A long idle time fills the bucket to its capacity, never beyond.
    assert admitted(burst(bucket, "a", 100.0, 4)) == [True, True, True, False]
    # Keys are independent.
    assert bucket.allow("b", 100.0) == Decision(True, 2, 0.0)


def test_leaking_bucket_by_hand():
    bucket = LeakingBucket(capacity=2, leak_rate=2)  # one request leaves every 0.5 s
    first = burst(bucket, "a", 0.0, 3)
    assert [d.departs_at for d in first] == [0.5, 1.0, None]
    assert [d.remaining for d in first] == [1, 0, 0]
    assert first[-1].retry_after == 0.5  # when the head of the queue leaves
    # At 0.5 the first request leaves (departures come before arrivals), one slot opens.
    assert bucket.allow("a", 0.5) == Decision(True, 0, 0.0, departs_at=1.5)
    assert bucket.allow("a", 0.7) == Decision(False, 0, 0.30000000000000004)
    # The queue drains; an arrival to an empty bucket leaves one drain time later.
    assert bucket.allow("a", 3.0) == Decision(True, 1, 0.0, departs_at=3.5)
    assert bucket.allow("a", 3.1) == Decision(True, 0, 0.0, departs_at=4.0)


def test_leaking_bucket_smooths_a_burst():
    """Twenty requests at once leave evenly spaced, at the leak rate."""
    bucket = LeakingBucket(capacity=20, leak_rate=4)
    departures = [d.departs_at for d in burst(bucket, "a", 10.0, 20)]
    assert departures == pytest.approx([10.0 + 0.25 * k for k in range(1, 21)])


@pytest.mark.parametrize("seed", range(20))
def test_leaking_bucket_admits_what_a_token_bucket_admits(seed):
    """The leaky bucket as a queue admits the token bucket's requests (as a meter, the
    same algorithm); only the output timing differs. Random float times, several keys."""
    rng = random.Random(seed)
    capacity, rate = rng.randint(1, 6), rng.choice([0.5, 1.0, 3.0, 7.5])
    trace = client_mix(duration=20, seed=seed, steady_rate=rate, burst_size=2 * capacity)
    leaking = replay(LeakingBucket(capacity=capacity, leak_rate=rate), trace)
    tokens = replay(TokenBucket(capacity=capacity, refill_rate=rate), trace)
    assert admitted(leaking) == admitted(tokens)
    assert [d.remaining for d in leaking] == [d.remaining for d in tokens]
    assert [d.retry_after for d in leaking] == pytest.approx([d.retry_after for d in tokens])


def test_fixed_window_lets_twice_the_limit_through_across_a_boundary():
    window = FixedWindow(limit=5, window=1.0)
    before = burst(window, "a", 0.99, 6)
    after = burst(window, "a", 1.0, 6)
    assert admitted(before) == admitted(after) == [True] * 5 + [False]
    # 10 requests admitted within 0.01 s, for a limit of 5 per second.
    assert before[-1].retry_after == pytest.approx(0.01)
    assert after[-1].retry_after == 1.0  # the window [1, 2) ends at 2
    assert [d.remaining for d in after] == [4, 3, 2, 1, 0, 0]


def test_fixed_windows_are_aligned_to_multiples_of_the_window():
    window = FixedWindow(limit=1, window=10)
    assert window.allow("a", 7.0)
    assert window.allow("a", 9.0) == Decision(False, 0, 1.0)
    assert window.allow("a", 10.0)  # a new window at 10, not 17


def test_sliding_window_log_by_hand():
    """The window is (now - window, now]: a request stops counting at t + window exactly."""
    log = SlidingWindowLog(limit=2, window=1)
    assert admitted([log.allow("a", 0.0), log.allow("a", 0.5)]) == [True, True]
    assert log.allow("a", 0.9) == Decision(False, 0, 0.09999999999999998)  # until 1.0
    assert log.allow("a", 1.0) == Decision(True, 0, 0.0)  # 0.0 has left: (0, 1]
    assert log.allow("a", 1.2) == Decision(False, 0, 0.30000000000000004)  # 0.5 leaves at 1.5
    # Unlike a fixed window, no boundary lets a double burst through.
    log = SlidingWindowLog(limit=5, window=1.0)
    assert sum(admitted(burst(log, "b", 0.99, 6) + burst(log, "b", 1.0, 6))) == 5


def test_sliding_window_counter_formula_by_hand():
    """estimate = previous * (1 - elapsed fraction) + current; admit if estimate < limit."""
    counter = SlidingWindowCounter(limit=10, window=1)
    assert all(burst(counter, "a", 0.5, 8))  # window 0: 8 requests
    # At 1.25 (window 1, a quarter gone): estimate = 8 * 0.75 + 0 = 6, so 4 requests fit:
    # estimates 6, 7, 8, 9 are below 10, the fifth (10) is not.
    at_125 = burst(counter, "a", 1.25, 5)
    assert admitted(at_125) == [True, True, True, True, False]
    assert [d.remaining for d in at_125] == [3, 2, 1, 0, 0]
    # At 1.5: 8 * 0.5 + 4 = 8, so two more. At 2.5 (window 2): 6 * 0.5 + 0 = 3, so this
    # request and 6 more fit.
    assert admitted(burst(counter, "a", 1.5, 3)) == [True, True, False]
    assert counter.allow("a", 2.5).remaining == 6
    # Two windows later nothing is left of the past.
    assert counter.allow("a", 4.0) == Decision(True, 9, 0.0)


def test_sliding_window_counter_retry_after_by_hand():
    counter = SlidingWindowCounter(limit=4, window=1)
    assert all(burst(counter, "a", 0.2, 4))
    # The current window is full; at 1.0 the estimate is still 4 * (1 - 0) = 4, so the
    # wait is until just after 1.0, where the previous window's weight starts to fade.
    rejected = counter.allow("a", 0.5)
    assert not rejected and 0.5 < rejected.retry_after < 0.5 + 1e-12
    assert not copy.deepcopy(counter).allow("a", 1.0)
    assert counter.allow("a", 1.25) == Decision(True, 0, 0.0)  # 4 * 0.75 = 3 < 4
    # Again at 1.25: 4 * 0.75 + 1 = 4, rejected; the estimate falls below 4 right after
    # 1.25, so the wait is as small as a rounding error.
    again = counter.allow("a", 1.25)
    assert not again and again.retry_after == pytest.approx(0.0, abs=1e-12)
    later = counter.allow("a", 1.3)
    assert later == Decision(True, 0, 0.0)  # 4 * 0.7 + 1 = 3.8


# --- retry_after is exact: at now + retry_after admitted, a moment before not ----------

ALL = [
    lambda rng: TokenBucket(capacity=rng.randint(1, 5), refill_rate=rng.choice([0.3, 1, 2.5])),
    lambda rng: LeakingBucket(capacity=rng.randint(1, 5), leak_rate=rng.choice([0.3, 1, 2.5])),
    lambda rng: FixedWindow(limit=rng.randint(1, 5), window=rng.choice([0.1, 0.7, 1, 3])),
    lambda rng: SlidingWindowLog(limit=rng.randint(1, 5), window=rng.choice([0.1, 0.7, 1, 3])),
    lambda rng: SlidingWindowCounter(limit=rng.randint(1, 5), window=rng.choice([0.1, 0.7, 3])),
]
NAMES = ["token", "leaking", "fixed", "log", "counter"]


@pytest.mark.parametrize("make", ALL, ids=NAMES)
@pytest.mark.parametrize("seed", range(8))
def test_retry_after_is_exact(make, seed):
    """For every rejection on a random trace: a retry at ``now + retry_after`` is admitted,
    one a millionth of the wait earlier (and at least 1e-9 s) is not."""
    rng = random.Random(seed)
    limiter = make(rng)
    trace = client_mix(duration=10, seed=seed, start=rng.uniform(0, 1000), burst_size=8)
    checked = 0
    for now, key in trace:
        decision = limiter.allow(key, now)
        if decision:
            assert decision.retry_after == 0
            continue
        assert decision.remaining == 0 and decision.retry_after > 0
        at = now + decision.retry_after
        assert copy.deepcopy(limiter).allow(key, at), (now, decision)
        early = at - max(decision.retry_after * 1e-6, 1e-9)
        if early >= now:
            assert not copy.deepcopy(limiter).allow(key, early), (now, decision)
        checked += 1
    assert checked > 5


# --- bounded memory ----------------------------------------------------------------


@pytest.mark.parametrize("make", ALL, ids=NAMES)
def test_idle_keys_are_forgotten(make):
    """10,000 clients, each sending two requests and going quiet: the limiter holds state
    only for the clients of the last few seconds, not for everyone it has ever seen."""
    limiter = make(random.Random(0))
    most = 0
    for i in range(10_000):
        now = i * 0.01  # a new client every 10 ms
        limiter.allow(f"client-{i}", now)
        limiter.allow(f"client-{i}", now)
        most = max(most, len(limiter))
    # The slowest state to recover here takes 5 / 0.3 s or 2 windows of 3 s: ~17 s.
    assert most < 2_000
    assert len(limiter) < 2_000
    limiter.allow("late", 10_000.0)
    assert len(limiter) == 1


def test_forgetting_a_key_does_not_change_decisions():
    """A recovered state decides exactly like a fresh one: the token bucket's answers are
    the same whether or not the key was dropped in between."""
    bucket = TokenBucket(capacity=3, refill_rate=1)
    burst(bucket, "a", 0.0, 3)
    bucket.allow("b", 10.0)  # "a" has recovered by now: dropped
    assert len(bucket) == 1
    assert [d.remaining for d in burst(bucket, "a", 10.0, 4)] == [2, 1, 0, 0]


# --- the leaking bucket's queue, simulated in SimPy ------------------------------------


def test_simulation_agrees_with_leaking_bucket_by_hand():
    """Ties on purpose: arrivals exactly when a request leaves."""
    arrivals = [0, 0, 0, 0.5, 0.5, 1.0, 3.0, 3.0]
    departures = simulate_leaking_bucket(arrivals, capacity=2, leak_rate=2)
    assert departures == [0.5, 1.0, None, 1.5, None, 2.0, 3.5, 4.0]
    bucket = LeakingBucket(capacity=2, leak_rate=2)
    assert [bucket.allow("a", t).departs_at for t in arrivals] == departures


@pytest.mark.parametrize("seed", range(10))
def test_simulation_agrees_with_leaking_bucket(seed):
    rng = random.Random(seed)
    capacity, rate = rng.randint(1, 8), rng.choice([0.5, 2, 5, 10])
    arrivals = bursty_times(duration=30, burst_size=12, bursts_per_second=0.3, seed=seed)
    arrivals = sorted(arrivals + poisson_times(rate, 30, seed=seed + 100))
    bucket = LeakingBucket(capacity=capacity, leak_rate=rate)
    expected = [bucket.allow("a", t).departs_at for t in arrivals]
    assert simulate_leaking_bucket(arrivals, capacity=capacity, leak_rate=rate) == expected
    assert None in expected and any(expected)


def test_simulation_checks_its_parameters():
    with pytest.raises(ValueError, match="capacity must be a whole number"):
        simulate_leaking_bucket([0.0], capacity=0, leak_rate=1)
    with pytest.raises(ValueError, match="leak_rate must be a finite number greater than 0"):
        simulate_leaking_bucket([0.0], capacity=1, leak_rate=0)


# --- traces --------------------------------------------------------------------------


def test_traces_are_seeded_sorted_and_in_range():
    trace = client_mix(duration=60, seed=7, start=100.0)
    assert trace == client_mix(duration=60, seed=7, start=100.0)
    assert trace != client_mix(duration=60, seed=8, start=100.0)
    assert trace == sorted(trace)
    assert all(100.0 <= t < 160.0 for t, _ in trace)
    assert {key for _, key in trace} == {"steady-0", "steady-1", "steady-2", "bursty-0", "bursty-1"}


def test_one_bursty_client():
    times = bursty_times(duration=30, burst_size=6, bursts_per_second=0.5, seed=2)
    trace = one_client(times, key="alice")
    assert trace == [(t, "alice") for t in times]
    decisions = replay(TokenBucket(capacity=3, refill_rate=1), trace)
    assert any(decisions) and not all(decisions)


def test_poisson_times_have_the_rate_asked_for():
    times = poisson_times(50.0, 200.0, seed=1)
    assert len(times) / 200.0 == pytest.approx(50.0, rel=0.03)
    assert times == sorted(times) and times == poisson_times(50.0, 200.0, seed=1)


def test_bursty_times_come_in_bursts():
    times = bursty_times(duration=100, burst_size=10, bursts_per_second=0.1, seed=3)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert sum(g < 0.05 for g in gaps) >= 0.8 * len(gaps)  # mostly back to back,
    assert sum(g > 1.0 for g in gaps) >= 3  # with quiet time between bursts
    with pytest.raises(ValueError, match="burst_size must be a whole number"):
        bursty_times(duration=1, burst_size=0, bursts_per_second=1, seed=0)
    with pytest.raises(ValueError, match="steady_clients must be a whole number of at least 0"):
        client_mix(duration=1, steady_clients=-1, seed=0)
