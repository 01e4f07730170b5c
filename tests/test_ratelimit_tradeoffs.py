"""sysdesign.ratelimit.tradeoffs: bursts at a window boundary held to the algorithms'
bounds, the sliding window counter's accuracy checked decision by decision and held to
Cloudflare's published figure, memory per key on fakeredis and on a real Redis, and the
two explorers."""

from __future__ import annotations

import random

import fakeredis
import pytest

from sysdesign.ratelimit import SlidingWindowCounter, client_mix
from sysdesign.ratelimit import tradeoffs as t

# --- max_in_span ----------------------------------------------------------------------


def brute_force_max_in_span(times, span):
    """Every interval (end - span, end] for every time as its end: the most inside."""
    return max((sum(1 for s in times if end - span < s <= end) for end in times), default=0)


@pytest.mark.parametrize("seed", range(20))
def test_max_in_span_is_exact(seed):
    rng = random.Random(seed)
    grid = rng.choice([None, 0.25])  # on a grid, many times are exactly `span` apart
    times = sorted(
        rng.uniform(0, 10) if grid is None else rng.randrange(40) * grid
        for _ in range(rng.randint(1, 60))
    )
    span = rng.choice([0.5, 1.0, 2.0])
    assert t.max_in_span(times, span) == brute_force_max_in_span(times, span)


def test_max_in_span_edges():
    assert t.max_in_span([], 1.0) == 0
    assert t.max_in_span([0.0, 1.0], 1.0) == 1  # exactly one span apart: never together
    assert t.max_in_span([0.0, 0.999], 1.0) == 2
    with pytest.raises(ValueError, match="times must be sorted"):
        t.max_in_span([1.0, 0.5], 1.0)
    with pytest.raises(ValueError, match="span"):
        t.max_in_span([1.0], 0)


# --- bursts at a window boundary ------------------------------------------------------


def test_boundary_trace_shape():
    times, boundary = t.boundary_trace(10, 2.0, 0.1)
    assert boundary == 20.0 and len(times) == 20 and times == sorted(times)
    assert sum(x < boundary for x in times) == 10
    assert times[-1] - times[0] < 2 * 0.1 * 2.0  # both bursts within 2 x offset x window
    flood, _ = t.boundary_trace(10, 2.0, 0.1, "burst, then flood")
    assert len(flood) == 50 and max(flood) < boundary + 2.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(limit=0), "limit"),
        (dict(window=-1.0), "window"),
        (dict(offset=0.0), "offset"),
        (dict(offset=0.6), "offset"),
        (dict(pattern="zigzag"), "pattern"),
    ],
)
def test_boundary_bursts_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        t.boundary_bursts(**kwargs)


def test_the_notebooks_two_examples():
    """The numbers the notebook prints: 10 just before a 1 s boundary and 10 just after."""
    two = t.boundary_bursts(limit=10, window=1.0, offset=0.05)
    assert two.max_in_window == {
        "token bucket": 10,
        "leaking bucket": 10,
        "fixed window": 20,  # twice the limit, within 0.1 s
        "sliding window log": 10,
        "sliding window counter": 11,  # the previous window's 10 count a hair under 10
    }
    admitted = two.admitted["fixed window"]
    assert admitted[-1] - admitted[0] < 0.1
    flood = t.boundary_bursts(limit=10, window=1.0, offset=0.01, pattern="burst, then flood")
    assert flood.max_in_window == {
        "token bucket": 19,  # capacity + refill over (almost) a window
        "leaking bucket": 19,
        "fixed window": 20,
        "sliding window log": 10,
        "sliding window counter": 20,  # its worst case: the previous 10 were all at the end
    }


@pytest.mark.parametrize("seed", range(30))
def test_boundary_bounds_hold_for_every_setting(seed):
    """Theory, on random settings: the fixed window reaches 2N in one window's length;
    the log never passes N; the buckets admit the same requests and at most
    capacity + rate x window - 1 = 2N - 1; the counter at most 2N (each window's own
    count stays under N)."""
    rng = random.Random(seed)
    limit = rng.randint(1, 50)
    window = rng.choice([0.5, 1.0, 2.5, 10.0])
    offset = rng.choice([0.01, 0.05, 0.2, 0.5])
    pattern = rng.choice(t.PATTERNS)
    result = t.boundary_bursts(limit=limit, window=window, offset=offset, pattern=pattern)
    most = result.max_in_window
    assert most["fixed window"] == 2 * limit
    assert most["sliding window log"] == limit
    # (the buckets admit the same requests in exact arithmetic; on these evenly spaced
    # times a request can land exactly as a token comes back, and the two break such a
    # tie differently in floating point: by one request at most)
    assert abs(most["token bucket"] - most["leaking bucket"]) <= 1
    assert limit <= most["token bucket"] <= max(2 * limit - 1, 1)
    assert limit <= most["sliding window counter"] <= 2 * limit
    if pattern == "two bursts" and offset <= 0.05:
        # tight bursts: only the fixed window gets near twice the limit
        refill = 2 * offset * limit  # tokens that come back while the bursts last
        assert most["token bucket"] <= limit + refill
        assert most["sliding window counter"] <= limit + 1 + refill


def test_boundary_explorer_renders_and_describes():
    fig = t.boundary_explorer.render(limit=5, window=2.0, offset=0.1, pattern="two bursts")
    assert len(fig.data) == 6  # five step lines and the bars
    assert list(fig.data[5].x) == [5, 5, 10, 5, 6]
    text = t.describe_boundary(t.boundary_bursts(limit=5, window=2.0, offset=0.1))
    assert "fixed window 10" in text and "sliding window log 5" in text
    for params in t.boundary_explorer.grid(3):
        t.boundary_explorer.render(**params)


# --- accuracy of the sliding window counter -------------------------------------------


def test_counter_accuracy_on_hand_made_cases():
    """Limit 2 per 1 s. Client a: 2 requests early in window 0, then at 1.2 s (estimate
    2 x 0.8 = 1.6: admitted, rightly) and 1.25 s (estimate 2 x 0.75 + 1 = 2.5: rejected,
    but only 1.2 is in (0.25, 1.25]: wrongly). Client b: 2 requests late in window 0, then
    at 1.5 s (estimate 2 x 0.5 = 1: admitted, but both are still in (0.5, 1.5]: wrongly)."""
    trace = sorted(
        [(0.1, "a-0"), (0.15, "a-0"), (1.2, "a-0"), (1.25, "a-0")]
        + [(0.9, "b-0"), (0.95, "b-0"), (1.5, "b-0")]
    )
    result = t.counter_accuracy(trace, limit=2, window=1.0, follow=["a-0", "c-0"])
    assert result.groups == {
        "a": t.DecisionErrors(requests=4, wrongly_allowed=0, wrongly_rejected=1),
        "b": t.DecisionErrors(requests=3, wrongly_allowed=1, wrongly_rejected=0),
    }
    assert result.total == t.DecisionErrors(7, 1, 1)
    assert result.total.wrong_fraction == pytest.approx(2 / 7)
    story = result.stories["a-0"]
    assert story.times == (0.1, 0.15, 1.2, 1.25)
    assert story.exact == (0, 1, 0, 1)
    assert story.estimate == pytest.approx((0, 1, 1.6, 2.5))
    assert story.verdict == ("right", "right", "right", "wrongly rejected")
    assert story.wrong == 1 and result.stories["c-0"].times == ()  # c never came
    assert result.worst_story() is story


@pytest.mark.parametrize("seed", range(6))
def test_counter_accuracy_matches_a_brute_force_judge(seed):
    """Replay the counter alone, then judge each decision by counting, from scratch, the
    admitted requests of that client in (now - window, now]."""
    rng = random.Random(seed)
    limit, window = rng.randint(2, 8), rng.choice([0.5, 1.0, 2.0])
    trace = client_mix(duration=20, burst_size=2 * limit, seed=seed)
    counter = SlidingWindowCounter(limit=limit, window=window)
    admitted_by_key: dict[str, list[float]] = {}
    allowed = rejected = 0
    for now, key in trace:
        exact = sum(1 for s in admitted_by_key.get(key, []) if now - window < s <= now)
        decision = counter.allow(key, now).admitted
        if decision:
            admitted_by_key.setdefault(key, []).append(now)
        allowed += decision and exact >= limit
        rejected += not decision and exact < limit
    result = t.counter_accuracy(trace, limit=limit, window=window)
    assert (result.total.wrongly_allowed, result.total.wrongly_rejected) == (allowed, rejected)
    assert result.total.requests == len(trace)


@pytest.mark.slow
def test_large_trace_error_rate_against_cloudflare():
    """The notebook's measurement, ~307K requests. Cloudflare: 0.003% of 400M requests
    wrongly allowed or limited. The overall rate is (share of requests from clients near
    their limit) x (error among those), and that share is a property of the traffic:
    ours is 2% (the 20 bursty clients), Cloudflare's is not published. So the overall
    rate is held to Cloudflare's within a factor of 30 either way (about one and a half
    orders of magnitude: across seeds 1-8 of this workload it ranges over 0.022-0.052%,
    7x to 17x Cloudflare's), and the parts that do not depend on the mix are held more
    tightly: no wrong decision at all for the steady clients, which never come near the
    limit, and 0.5% to 5% wrong among the bursty clients' requests (2.3% measured).
    The estimate's mean error near the limit (ours: |estimate - exact| / exact where the
    exact count is at least half the limit; Cloudflare does not define theirs) is held
    to within a factor of 2 of Cloudflare's 6%."""
    trace = t.accuracy_trace()
    assert 300_000 < len(trace) < 315_000
    result = t.counter_accuracy(trace, limit=t.ACCURACY_LIMIT, window=t.ACCURACY_WINDOW)
    cloudflare = t.CLOUDFLARE["wrong_fraction"]
    assert cloudflare / 30 <= result.total.wrong_fraction <= cloudflare * 30
    assert result.groups["steady"].wrong == 0
    assert 0.005 <= result.groups["bursty"].wrong_fraction <= 0.05
    assert result.groups["bursty"].requests / result.total.requests == pytest.approx(0.02, rel=0.1)
    mean_error = t.CLOUDFLARE["mean_rate_error"]
    assert mean_error / 2 <= result.mean_error_near_limit <= mean_error * 2


def test_accuracy_explorer():
    assert 1_700 <= len(t.small_accuracy_trace(0)) < len(t.small_accuracy_trace(10)) <= 3_200
    result = t.accuracy_sample(limit=10, window=1.0, bursty_clients=3)
    assert len(result.stories) == 33
    worst = result.worst_story()
    assert worst.key.startswith("bursty-") and worst.wrong == max(
        s.wrong for s in result.stories.values()
    )
    assert result.groups["steady"].wrong == 0 and result.groups["bursty"].wrong > 0
    assert t.accuracy_sample(bursty_clients=0).worst_story().key.startswith("steady-")
    # a limit at the steady clients' own rate puts them near it: they get errors too
    assert t.accuracy_sample(limit=2, bursty_clients=0).total.wrong > 0
    assert "wrongly allowed" in t.describe_accuracy(result)
    with pytest.raises(ValueError, match="bursty_clients"):
        t.accuracy_sample(bursty_clients=4)
    for params in t.accuracy_explorer.grid(3):
        t.accuracy_explorer.render(**params)


# --- memory per key -------------------------------------------------------------------

NUMBERS_AT_LIMIT_10 = {  # what each algorithm keeps for a client with 10 requests in a window
    "token bucket": ("hash", 2),
    "leaking bucket": ("list", 10),
    "fixed window": ("hash", 2),
    "sliding window log": ("zset", 10),
    "sliding window counter": ("hash", 3),
}


def test_state_memory_on_fakeredis():
    """fakeredis has no MEMORY USAGE or INFO: the state is measured, the bytes are None."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    rows = t.state_memory(client, limit=10, window=1.0)
    assert {r.algorithm: (r.redis_type, r.numbers) for r in rows} == NUMBERS_AT_LIMIT_10
    for row in rows:
        assert row.memory_usage is None
        assert row.theoretical_bytes == 8 * row.numbers < row.payload_bytes
    assert client.dbsize() == 0  # cleaned up
    assert t.used_memory_per_key(client, keys=10) is None
    assert t.memory_by_limit(client, (1, 4)) == {
        "sliding window log": [None, None],
        "leaking bucket": [None, None],
    }


@pytest.mark.redis_server
def test_memory_on_a_real_server(redis_client):
    rows = t.state_memory(redis_client, limit=10, window=1.0)
    assert {r.algorithm: (r.redis_type, r.numbers) for r in rows} == NUMBERS_AT_LIMIT_10
    usage = {r.algorithm: r.memory_usage for r in rows}
    for row in rows:  # Redis's bookkeeping comes on top of the stored strings
        assert row.payload_bytes < row.memory_usage < row.payload_bytes + 400
    assert usage["sliding window log"] > usage["sliding window counter"]
    per_key = t.used_memory_per_key(redis_client, keys=1000)
    for name, bytes_per_key in per_key.items():  # plus the expiry and the hash tables
        assert 0 < bytes_per_key - usage_of_one_request(redis_client, name) < 150, name
    assert redis_client.dbsize() == 0


def usage_of_one_request(client, name: str) -> int:
    limiter = t.redis_limiters_for(client, 10, 1.0, prefix="one")[name]
    limiter.allow("client-0", t.FILL_START)
    key = limiter.redis_key("client-0")
    usage = t.memory_usage(client, key)
    client.delete(key)
    return usage


@pytest.mark.redis_server
def test_sliding_log_memory_grows_with_the_limit(redis_client):
    """One sorted-set entry per admitted request: compact (listpack) up to 128 entries,
    then a skiplist with more bytes per entry (zset-max-listpack-entries; Redis 7.0
    measures 2.4x: held at 1.5x, room for other versions' overheads)."""
    limits = (1, 8, 32, 128, 129, 512)
    sizes = t.memory_by_limit(redis_client, limits)
    log = dict(zip(limits, sizes["sliding window log"], strict=True))
    assert all(a < b for a, b in zip(limits, limits[1:], strict=False))
    assert all(log[a] < log[b] for a, b in zip(limits, limits[1:], strict=False))
    assert log[129] / 129 > 1.5 * log[128] / 128
    assert log[512] / 512 > 1.5 * log[128] / 128
    bucket = sizes["leaking bucket"]
    assert (
        all(a <= b for a, b in zip(bucket, bucket[1:], strict=False)) and bucket[-1] > 5 * bucket[0]
    )
    fig = t.memory_by_limit_figure(limits, sizes)
    assert [trace.name for trace in fig.data] == ["sliding window log", "leaking bucket"]


# --- decisions per second -------------------------------------------------------------


def test_measure_throughput_in_process_and_embedded():
    trace = client_mix(duration=5, seed=1)
    local = t.measure_throughput(t.limiters_for(10, 1.0), trace)
    assert [r.algorithm for r in local] == list(t.ALGORITHMS)
    assert all(r.decisions_per_s > 0 and r.commands_per_decision is None for r in local)
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    embedded = t.measure_throughput(t.redis_limiters_for(client, 10, 1.0), trace, client)
    assert all(r.decisions_per_s > 0 and r.scripts_per_decision is None for r in embedded)


@pytest.mark.redis_server
def test_one_script_call_per_decision_on_a_real_server(redis_client):
    trace = client_mix(duration=5, seed=1)
    results = t.measure_throughput(t.redis_limiters_for(redis_client, 10, 1.0), trace, redis_client)
    for r in results:
        assert r.scripts_per_decision == 1.0, r  # one round trip: one EVALSHA
        assert r.commands_per_decision > 2, r  # ... that runs several commands inside
