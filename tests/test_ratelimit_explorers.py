"""sysdesign.ratelimit.explorers: each limiter's run by hand (decisions and state over
time), the bounds theory gives on a random bursty trace, parameter errors, figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sysdesign.explore import REGISTRY
from sysdesign.ratelimit import (
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
    one_client,
    replay,
    simulate_leaking_bucket,
)
from sysdesign.ratelimit import explorers as ex

NAMES = [
    "ratelimit-five-algorithms",
    "ratelimit-token-bucket",
    "ratelimit-leaking-bucket",
    "ratelimit-fixed-window",
    "ratelimit-sliding-window-log",
    "ratelimit-sliding-window-counter",
]


def points(curve) -> list[tuple[float, float]]:
    x, y = curve
    return [(float(a), float(b)) for a, b in zip(x, y, strict=True)]


# --- helpers ---------------------------------------------------------------------------------


def test_max_in_span_by_hand():
    assert ex.max_in_span([], 1.0) == 0
    assert ex.max_in_span([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3  # [0, 1) or [0.5, 1.5)
    assert ex.max_in_span([0.0, 1.0, 2.0], 1.0) == 1  # half-open: 1.0 is not in [0, 1)
    departures = np.cumsum(np.full(30, 0.1))  # ten steps of 0.1 are 1 s, rounding aside
    assert ex.max_in_span(departures, 1.0) == 10


def test_count_in_last_by_hand():
    x, y = ex.count_in_last([0.5, 0.75, 1.5], 1.0, duration=3.0)
    # +1 at each time, -1 exactly one window later; at 1.5 the 0.5 leaves as the 1.5 comes
    assert points((x, y)) == [
        (0, 0), (0.5, 1), (0.75, 2), (1.5, 1), (1.5, 2), (1.75, 1), (2.5, 0), (3.0, 0)
    ]  # fmt: skip


def test_bursty_trace_keeps_the_average_and_bursts():
    smooth = ex.bursty_trace(offered_rate=10, burst_size=1, seed=3, duration=200)
    bursty = ex.bursty_trace(offered_rate=10, burst_size=10, seed=3, duration=200)
    assert smooth.size / 200 == pytest.approx(10, rel=0.1)
    assert bursty.size / 200 == pytest.approx(10, rel=0.25)  # 2,000 requests, 200 bursts
    assert ex.max_in_span(bursty, 0.1) >= 10 > ex.max_in_span(smooth, 0.1)
    same = ex.bursty_trace(offered_rate=10, burst_size=10, seed=3, duration=200)
    assert np.array_equal(bursty, same)


# --- each limiter by hand ------------------------------------------------------------------


def test_token_bucket_tokens_over_time_by_hand():
    # capacity 2, 1 token/s: two requests empty the bucket at 0, the third is rejected,
    # 0.5 tokens at 0.5 s is not enough, 1.5 tokens at 1.5 s is; full again at 3 s.
    run = ex.token_bucket_run([0, 0, 0, 0.5, 1.5], capacity=2, refill_rate=1, duration=3)
    assert run.admitted.tolist() == [True, True, False, False, True]
    assert points(run.curves["tokens"]) == [
        (0, 2), (0, 1), (0, 0), (1.5, 1.5), (1.5, 0.5), (3, 2)
    ]  # fmt: skip
    # refilled to the brim at 1 s, then flat until the next request
    run = ex.token_bucket_run([0, 5], capacity=2, refill_rate=1, duration=6)
    assert points(run.curves["tokens"]) == [(0, 2), (0, 1), (1, 2), (5, 2), (5, 1), (6, 2)]


def test_token_bucket_curve_matches_the_limiter_on_a_bursty_trace():
    times = ex.bursty_trace(offered_rate=15, burst_size=8, seed=5)
    run = ex.token_bucket_run(times, capacity=6, refill_rate=4)
    decisions = replay(TokenBucket(capacity=6, refill_rate=4), one_client(times))
    assert run.admitted.tolist() == [bool(d) for d in decisions]
    x, y = run.curves["tokens"]
    assert np.all(np.diff(x) >= 0) and y.min() >= 0 and y.max() <= 6
    # every admission is a drop of exactly one token; what is left, rounded down, is
    # the `remaining` the limiter reported
    drops = [i for i in range(len(x) - 1) if x[i] == x[i + 1] and y[i + 1] < y[i]]
    assert np.allclose(y[drops] - y[[i + 1 for i in drops]], 1)
    remaining = [d.remaining for d in decisions if d]
    assert [math.floor(y[i + 1] + 1e-9) for i in drops] == remaining
    # between admissions tokens rise at refill_rate, or stay at capacity
    rising = (np.diff(x) > 0) & (np.diff(y) > 0)
    assert np.allclose(np.diff(y)[rising] / np.diff(x)[rising], 4)


def test_leaking_bucket_by_hand():
    # capacity 3, 2/s: three requests at 0 leave at 0.5, 1.0, 1.5; the fourth is
    # rejected; at 0.6 one has left, so it joins and leaves at 1.5 + 0.5 = 2.0.
    run = ex.leaking_bucket_run([0, 0, 0, 0, 0.6], capacity=3, leak_rate=2, duration=5)
    assert run.admitted.tolist() == [True, True, True, False, True]
    assert np.allclose(run.departures[run.admitted], [0.5, 1.0, 1.5, 2.0])
    assert np.isnan(run.departures[3])
    assert points(run.curves["queue length"]) == [
        (0, 0), (0, 1), (0, 2), (0, 3), (0.5, 2), (0.6, 3), (1, 2), (1.5, 1), (2, 0), (5, 0)
    ]  # fmt: skip


def test_leaking_bucket_departures_are_evenly_spaced_at_one_over_leak_rate():
    run = ex.leaking_bucket_run([1.0] * 12, capacity=10, leak_rate=4, duration=10)
    assert run.admitted.sum() == 10
    assert np.allclose(np.diff(run.sent_on_times), 1 / 4)
    assert run.sent_on_times[0] == pytest.approx(1.25)


def test_leaking_bucket_smooths_a_bursty_trace_and_agrees_with_simpy():
    times = ex.bursty_trace(offered_rate=12, burst_size=10, seed=2)
    run = ex.leaking_bucket_run(times, capacity=10, leak_rate=10)
    token = ex.token_bucket_run(times, capacity=10, refill_rate=10)
    assert np.array_equal(run.admitted, token.admitted)  # the meter admits what the bucket does
    assert ex.max_in_span(run.admitted_times, 1.0) > 10  # arrivals come in bursts...
    assert ex.max_in_span(run.sent_on_times, 1.0) <= 10  # ...departures at most 10 a second
    waits = (run.departures - run.times)[run.admitted]
    assert waits.max() <= 10 / 10 + 1e-9  # at most capacity / leak_rate in the queue
    assert run.curves["queue length"][1].max() <= 10
    simulated = simulate_leaking_bucket(times.tolist(), capacity=10, leak_rate=10)
    assert [d is not None for d in simulated] == run.admitted.tolist()
    assert np.allclose([d for d in simulated if d is not None], run.departures[run.admitted])


TIMES = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.5]  # binary fractions: no rounding surprises


def test_fixed_window_by_hand_lets_twice_the_limit_through():
    run = ex.fixed_window_run(TIMES, limit=2, window=1, duration=3)
    assert run.admitted.tolist() == [True, True, True, True, False, False, True]
    starts, counts = run.curves["count in the window"]
    assert starts.tolist() == [0, 1, 2] and counts.tolist() == [2, 2, 1]
    _, last_second = run.curves["admitted in the last 1 s"]
    assert last_second.max() == 4 == run.bound  # 0.5, 0.75, 1.0, 1.25 within one second
    assert ex.max_in_span(run.admitted_times, 1.0) == 4


def test_sliding_window_log_by_hand():
    run = ex.sliding_window_log_run(TIMES, limit=2, window=1, duration=3)
    # 1.0 and 1.25 find 0.5 and 0.75 in the log; at 1.5 the 0.5 has just left
    assert run.admitted.tolist() == [True, True, False, False, True, True, True]
    assert points(run.curves["timestamps in the log"]) == [
        (0, 0), (0.5, 1), (0.75, 2), (1.5, 1), (1.5, 2), (1.75, 1), (1.75, 2),
        (2.5, 1), (2.5, 2), (2.75, 1), (3, 1),
    ]  # fmt: skip
    assert run.state_per_key == 2 == ex.max_in_span(run.admitted_times, 1.0)


def test_sliding_window_counter_by_hand():
    # limit 50 a minute: 42 requests in the first minute (at 10 s), 18 at 74 s. At 75 s,
    # a quarter into the second minute: 42 * 0.75 + 18 = 49.5 < 50, admitted; then 50.5.
    times = [10.0] * 42 + [74.0] * 18 + [75.0, 75.0]
    run = ex.sliding_window_counter_run(times, limit=50, window=60, duration=120)
    assert run.admitted.sum() == 61 and run.admitted.tolist()[-2:] == [True, False]
    kept = run.admitted_times
    assert ex.counter_estimate(kept, 60, [75.0 - 1e-9, 75.0]) == pytest.approx([49.5, 50.5])
    assert ex.counter_estimate(kept, 60, [30.0, 60.0, 90.0, 119.0]) == pytest.approx(
        [42, 42, 42 * 0.5 + 19, 42 / 60 + 19]
    )
    # the exact count at 75 s is 19: the 42 of 10 s left the window at 70 s. An exact
    # log admits all 62, so the two disagree on one request.
    x, y = run.curves["exact count in the last 60 s"]
    assert y[np.searchsorted(x, 75.0, side="right") - 1] == 19
    assert run.disagreements == 1
    estimate_x, estimate_y = run.curves["estimate"]
    assert estimate_y[np.searchsorted(estimate_x, 75.0, side="right") - 1] == pytest.approx(50.5)


def test_sliding_window_counter_matches_the_limiter_and_log_on_a_bursty_trace():
    times = ex.bursty_trace(offered_rate=10, burst_size=10, seed=4)
    run = ex.sliding_window_counter_run(times, limit=10, window=1)
    trace = one_client(times)
    counter = [bool(d) for d in replay(SlidingWindowCounter(limit=10, window=1), trace)]
    exact = [bool(d) for d in replay(SlidingWindowLog(limit=10, window=1), trace)]
    assert run.admitted.tolist() == counter
    assert run.disagreements == sum(a != b for a, b in zip(counter, exact, strict=True)) > 0
    # each admission happened while the estimate was under the limit
    estimate_before = ex.counter_estimate(run.admitted_times, 1, run.admitted_times - 1e-9)
    assert np.all(estimate_before < 10 + 1e-6)


def test_smooth_traffic_makes_the_counter_nearly_exact():
    """Cloudflare's 0.003% came from many steady sources; one bursty client is its worst case."""
    smooth = ex.bursty_trace(offered_rate=10, burst_size=1, seed=4, duration=300)
    bursty = ex.bursty_trace(offered_rate=10, burst_size=10, seed=4, duration=300)
    wrong = {
        name: ex.sliding_window_counter_run(t, limit=20, window=1, duration=300).disagreements
        / t.size
        for name, t in (("smooth", smooth), ("bursty", bursty))
    }
    assert wrong["smooth"] < 0.01 < wrong["bursty"]


# --- all five on one trace ------------------------------------------------------------------


def test_comparison_obeys_each_algorithms_bound():
    comparison = ex.compare_limiters()
    rows = {row["algorithm"]: row for row in comparison.table()}
    assert list(rows) == [
        "token bucket", "leaking bucket", "fixed window", "sliding window log",
        "sliding window counter",
    ]  # fmt: skip
    assert rows["token bucket"]["admitted"] == rows["leaking bucket"]["admitted"]
    assert rows["token bucket"]["max admitted in 1 s"] <= 10 + 10  # capacity + rate * 1 s
    assert rows["leaking bucket"]["max sent on in 1 s"] <= 10
    assert 0 < rows["leaking bucket"]["max delay (s)"] <= 1.0
    assert rows["fixed window"]["max admitted in 1 s"] == 20  # 2N across a boundary, reached
    assert rows["sliding window log"]["max admitted in 1 s"] == 10
    for row in rows.values():
        assert row["admitted"] + row["rejected"] == comparison.runs[0].times.size
    assert "| token bucket |" in comparison.markdown()
    assert "310 requests" in comparison.describe()


def test_comparable_settings_share_rate_and_burst():
    comparison = ex.compare_limiters(rate=5, burst=20)
    settings = [run.settings for run in comparison.runs]
    assert settings == [
        "capacity 20, refill 5/s", "capacity 20, leak 5/s", "limit 20 per 4 s",
        "limit 20 per 4 s", "limit 20 per 4 s",
    ]  # fmt: skip


# --- explorers: registry, errors, figures ---------------------------------------------------


def test_all_explorers_are_registered():
    for name in NAMES:
        assert REGISTRY[name] in ex.EXPLORERS
    assert [e.name for e in ex.EXPLORERS] == NAMES


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("ratelimit-token-bucket", {"capacity": 0}, r"capacity must be between 1 and 40, got 0"),
        ("ratelimit-token-bucket", {"refill_rate": -1}, r"refill_rate must be between 1 and 40"),
        ("ratelimit-leaking-bucket", {"leak_rate": 100}, r"leak_rate must be between 1 and 40"),
        ("ratelimit-fixed-window", {"window": 0}, r"window must be between 0.25 and 5, got 0"),
        ("ratelimit-sliding-window-log", {"limit": 2.5}, r"limit must be a whole number"),
        ("ratelimit-sliding-window-counter", {"seed": -1}, r"seed must be between 0 and 20"),
        ("ratelimit-five-algorithms", {"burst_size": 0}, r"burst_size must be between 1 and 40"),
        ("ratelimit-five-algorithms", {"offered_rate": "fast"}, r"offered_rate must be a number"),
    ],
)
def test_invalid_explorer_parameters_name_the_parameter(name, params, message):
    with pytest.raises(ValueError, match=message):
        REGISTRY[name].compute(**params)


def test_invalid_run_arguments_name_the_argument():
    with pytest.raises(ValueError, match=r"capacity must be a whole number of at least 1, got 0"):
        ex.token_bucket_run([0.0], capacity=0, refill_rate=1)
    with pytest.raises(ValueError, match=r"leak_rate must be a finite number greater than 0"):
        ex.leaking_bucket_run([0.0], capacity=1, leak_rate=0)
    with pytest.raises(ValueError, match=r"window must be a finite number greater than 0"):
        ex.fixed_window_run([0.0], limit=1, window=-1)
    with pytest.raises(ValueError, match=r"times must be sorted"):
        ex.sliding_window_log_run([1.0, 0.5], limit=1, window=1)
    with pytest.raises(ValueError, match=r"times must be .* in \[0, duration=30\)"):
        ex.sliding_window_counter_run([31.0], limit=1, window=1)
    with pytest.raises(ValueError, match=r"offered_rate must be a finite number greater than 0"):
        ex.bursty_trace(offered_rate=0, burst_size=1, seed=0)


def trace_names(fig) -> list[str]:
    return [trace.name for trace in fig.data]


@pytest.mark.parametrize(
    "name, state",
    [
        ("ratelimit-token-bucket", ["tokens", "capacity"]),
        ("ratelimit-leaking-bucket", ["queue length", "capacity"]),
        ("ratelimit-fixed-window", ["count in its window", "admitted in the last 1 s", "limit"]),
        ("ratelimit-sliding-window-log", ["timestamps in the log", "limit"]),
        ("ratelimit-sliding-window-counter", ["exact count in the last 1 s", "estimate", "limit"]),
    ],
)
def test_explorer_figures_have_decisions_above_and_state_below(name, state):
    explorer = REGISTRY[name]
    run = explorer.compute()
    fig = explorer.figure(run)
    decisions = ["admitted", "rejected"]
    if name == "ratelimit-leaking-bucket":
        decisions.append("sent on (leaves the queue)")
    assert trace_names(fig) == decisions + state
    assert {t.yaxis for t in fig.data[: len(decisions)]} == {"y"}
    assert {t.yaxis for t in fig.data[len(decisions) :]} == {"y2"}
    bars = run.binned()
    assert sum(fig.data[0].y) == run.admitted.sum() == bars["admitted"].sum()
    assert sum(fig.data[1].y) == (~run.admitted).sum()
    assert "admitted <b>" in explorer.describe(run)


def test_comparison_figure_has_one_row_per_algorithm():
    fig = ex.five_algorithms.render()
    assert [t.yaxis for t in fig.data if t.name == "admitted"] == ["y", "y2", "y3", "y4", "y5"]
    assert [t.name for t in fig.data].count("sent on (leaves the queue)") == 1
    assert sum(t.showlegend is not False for t in fig.data) == 3  # one legend entry each


def test_explorers_are_seeded():
    for explorer in ex.EXPLORERS[1:]:
        a, b = explorer.compute(), explorer.compute()
        assert np.array_equal(a.admitted, b.admitted) and np.array_equal(a.times, b.times)
