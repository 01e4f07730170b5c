"""sysdesign.ratelimit.redis: each Redis limiter gives exactly its in-process twin's
decisions, on the embedded fakeredis and on a real server; one atomic round trip per
decision; keys in one cluster slot, expiring when idle; Redis's clock; and no overdraft
under 8 concurrent processes."""

from __future__ import annotations

import multiprocessing
import random

import fakeredis
import pytest
import redis as redis_py

from sysdesign.ratelimit import algorithms
from sysdesign.ratelimit import redis as rl_redis
from sysdesign.ratelimit.traces import client_mix, replay

TWINS = {
    "token_bucket": (algorithms.TokenBucket, rl_redis.RedisTokenBucket, "capacity", "refill_rate"),
    "leaking_bucket": (
        algorithms.LeakingBucket,
        rl_redis.RedisLeakingBucket,
        "capacity",
        "leak_rate",
    ),
    "fixed_window": (algorithms.FixedWindow, rl_redis.RedisFixedWindow, "limit", "window"),
    "sliding_window_log": (
        algorithms.SlidingWindowLog,
        rl_redis.RedisSlidingWindowLog,
        "limit",
        "window",
    ),
    "sliding_window_counter": (
        algorithms.SlidingWindowCounter,
        rl_redis.RedisSlidingWindowCounter,
        "limit",
        "window",
    ),
}


@pytest.fixture(params=["fakeredis", pytest.param("redis-server", marks=pytest.mark.redis_server)])
def client(request):
    """A client of an empty Redis: the embedded fakeredis, or a real throwaway server."""
    if request.param == "fakeredis":
        return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    return request.getfixturevalue("redis_client")


def twins(name: str, client, count: int, rate: float, **options):
    local_cls, redis_cls, count_name, rate_name = TWINS[name]
    params = {count_name: count, rate_name: rate}
    return local_cls(**params), redis_cls(client, **params, **options)


# --- the same decisions as the in-process twin --------------------------------------


@pytest.mark.parametrize("name", TWINS)
@pytest.mark.parametrize("seed", range(5))
def test_same_decisions_as_the_in_process_twin(client, name, seed):
    """Random multi-client traces with float times (some near today's Unix time, where a
    double keeps only about 7 decimals of a second): every Decision is identical, floats
    included, bit for bit."""
    rng = random.Random(seed)
    count, rate = rng.randint(1, 6), rng.choice([0.3, 1.0, 2.5, 0.7])
    start = rng.choice([0.0, 1234.5, 1.7e9 + rng.uniform(0, 1e6)])
    trace = client_mix(duration=10, burst_size=2 * count + 1, seed=seed, start=start)
    # Keys expire by the server's clock; a minute of grace keeps a replay that stalls
    # (a busy CI machine) from losing state that its own times still need.
    local, shared = twins(name, client, count, rate, expiry_grace=60)
    expected = replay(local, trace)
    assert replay(shared, trace) == expected
    assert any(expected) and not all(expected)


@pytest.mark.parametrize("name", TWINS)
def test_same_decisions_on_a_grid_full_of_ties(client, name):
    """Times on a 1/8 s grid with rates and windows that divide it: requests land exactly
    on window edges, refills and departures, where a < instead of <= would show."""
    rng = random.Random(42)
    trace = sorted((rng.randrange(0, 8 * 12) / 8, rng.choice("ab")) for _ in range(150))
    for count, rate in [(1, 2.0), (3, 0.5), (4, 4.0)]:
        local, shared = twins(name, client, count, rate, expiry_grace=60, prefix=f"grid-{count}")
        assert replay(shared, trace) == replay(local, trace), (count, rate)


def test_bytes_replies_work_too():
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=False)
    bucket = rl_redis.RedisLeakingBucket(client, capacity=1, leak_rate=2)
    assert bucket.allow("a", 1.0) == algorithms.Decision(True, 0, 0.0, departs_at=1.5)
    assert bucket.allow("a", 1.0) == algorithms.Decision(False, 0, 0.5)


# --- one round trip, one slot, expiring keys ----------------------------------------------


@pytest.mark.parametrize("name", TWINS)
def test_one_round_trip_per_decision(client, name, monkeypatch):
    _, limiter = twins(name, client, 3, 1.0)
    limiter.allow("a", 1.0)  # the first call may load the script (NOSCRIPT, SCRIPT LOAD)
    sent = []
    original = client.execute_command

    def counting(*args, **kwargs):
        sent.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(client, "execute_command", counting)
    for t in (1.0, 1.0, 1.0, 1.0, 2.5, 7.0):
        limiter.allow("a", t)
    assert sent == ["EVALSHA"] * 6


@pytest.mark.parametrize("name", TWINS)
def test_rejected_requests_use_up_nothing(client, name):
    """A client hammering a full limiter does not push back its own next admission."""
    local, shared = twins(name, client, 2, 1.0)
    for limiter in (local, shared):
        while limiter.allow("a", 10.25):
            pass
        wait = limiter.allow("a", 10.25).retry_after
        for k in range(100):
            assert not limiter.allow("a", 10.25 + wait * k / 100)
        assert limiter.allow("a", 10.25 + wait)


@pytest.mark.parametrize("name", TWINS)
def test_keys_carry_a_hash_tag(client, name):
    """``ratelimit:{<key>}:<algorithm>``: Redis Cluster puts the key in the client key's
    slot, so every key of one decision is in one slot."""
    _, limiter = twins(name, client, 3, 1.0)
    limiter.allow("user:42", 1.0)
    key = f"ratelimit:{{user:42}}:{name}"
    assert client.keys("*") == [key] == [limiter.redis_key("user:42")]
    assert redis_py.crc.key_slot(key.encode()) == redis_py.crc.key_slot(b"user:42")


@pytest.mark.parametrize(
    "name, count, rate, now, recovers_in",
    [
        ("token_bucket", 5, 2.0, 10.0, 0.5),  # one token short: 0.5 s to refill
        ("leaking_bucket", 5, 2.0, 10.0, 0.5),  # the queued request leaves at 10.5
        ("fixed_window", 5, 2.0, 10.5, 1.5),  # the window [10, 12) ends at 12
        ("sliding_window_log", 5, 2.0, 10.5, 2.0),  # the request counts until 12.5
        ("sliding_window_counter", 5, 2.0, 10.5, 3.5),  # it counts as "previous" until 14
    ],
)
def test_idle_keys_expire_once_recovered(client, name, count, rate, now, recovers_in):
    """After an admission the key lives as long as its state needs to recover, plus one
    second of grace (for app servers whose clocks run a little behind)."""
    _, limiter = twins(name, client, count, rate)
    limiter.allow("a", now)
    ttl_ms = client.pttl(limiter.redis_key("a"))
    expected = recovers_in * 1000 + 1000
    assert expected - 100 < ttl_ms <= expected
    _, patient = twins(name, client, count, rate, prefix="patient", expiry_grace=30)
    patient.allow("a", now)
    assert recovers_in * 1000 + 30_000 - 100 < client.pttl(patient.redis_key("a"))


def test_an_expired_key_starts_over(client):
    bucket = rl_redis.RedisFixedWindow(client, limit=1, window=1.0)
    assert bucket.allow("a", 5.0) and not bucket.allow("a", 5.5)
    client.delete(bucket.redis_key("a"))  # what expiry does
    assert bucket.allow("a", 5.5)


# --- Redis's clock --------------------------------------------------------------------


def server_seconds(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


@pytest.mark.parametrize("name", TWINS)
def test_now_none_uses_the_servers_clock(client, name):
    """With ``now=None`` every decision is timed by Redis, not by the app server, so
    servers whose clocks disagree still agree on the limits."""
    # One request per 2 s: a bucket refilling at 0.5/s or a log of 1 per 2 s; 1 per
    # minute for the fixed windows (so that no window edge falls between the requests).
    _, limiter = twins(name, client, 1, 0.5 if name.endswith("bucket") else 2.0)
    if name in ("fixed_window", "sliding_window_counter"):
        _, limiter = twins(name, client, 1, 60.0)
    before = server_seconds(client)
    assert limiter.allow("a")
    second = limiter.allow("a")
    after = server_seconds(client)
    assert not second
    if name in ("fixed_window", "sliding_window_counter"):  # until the minute ends
        window_end = (before // 60 + 1) * 60
        assert window_end - after - 1e-3 <= second.retry_after <= window_end - before + 1e-3
    else:  # 2 s after the first request
        assert 2.0 - (after - before) - 1e-3 <= second.retry_after <= 2.0


def test_server_time_is_what_gets_stored(client):
    log = rl_redis.RedisSlidingWindowLog(client, limit=3, window=60)
    before = server_seconds(client)
    log.allow("a")
    after = server_seconds(client)
    ((_member, score),) = client.zrange(log.redis_key("a"), 0, -1, withscores=True)
    assert before - 1e-3 <= score <= after + 1e-3


def test_a_clock_behind_never_turns_time_back(client):
    """Two app servers pass their own ``now``; one runs 10 s behind. The key's time does
    not go back, so the slow server cannot refill a bucket or reopen a window."""
    bucket = rl_redis.RedisTokenBucket(client, capacity=2, refill_rate=0.1)
    assert all(bucket.allow("a", 100.0) for _ in range(2))
    assert (
        bucket.allow("a", 90.0) == bucket.allow("a", 100.0) == algorithms.Decision(False, 0, 10.0)
    )
    window = rl_redis.RedisFixedWindow(client, limit=2, window=10)
    assert all(window.allow("a", 25.0) for _ in range(2))
    assert not window.allow("a", 15.0)  # counted in the window [20, 30), not [10, 20)
    counter = rl_redis.RedisSlidingWindowCounter(client, limit=2, window=10)
    assert all(counter.allow("a", 25.0) for _ in range(2))
    assert not counter.allow("a", 15.0)
    log = rl_redis.RedisSlidingWindowLog(client, limit=1, window=10)
    assert log.allow("a", 100.0)
    assert log.allow("a", 95.0) == algorithms.Decision(False, 0, 10.0)  # as if at 100
    queue = rl_redis.RedisLeakingBucket(client, capacity=1, leak_rate=1)
    assert queue.allow("a", 100.0).departs_at == 101.0
    assert queue.allow("a", 99.0) == algorithms.Decision(False, 0, 2.0)  # a fuller queue


# --- parameters ---------------------------------------------------------------------


@pytest.mark.parametrize("name", TWINS)
def test_bad_parameters_are_named(name):
    client = fakeredis.FakeRedis()
    _, redis_cls, count_name, rate_name = TWINS[name]
    with pytest.raises(ValueError, match=rf"{count_name} must be a whole number of at least 1"):
        redis_cls(client, **{count_name: 0, rate_name: 1.0})
    with pytest.raises(ValueError, match=rf"{rate_name} must be a finite number greater than 0"):
        redis_cls(client, **{count_name: 1, rate_name: -2})
    limiter = redis_cls(client, **{count_name: 1, rate_name: 1.0})
    with pytest.raises(ValueError, match=r"now must be None \(the server's clock\) or a finite"):
        limiter.allow("a", -1.0)
    with pytest.raises(ValueError, match="key must be a string"):
        limiter.allow(b"a", 1.0)
    with pytest.raises(ValueError, match="prefix must be a non-empty string"):
        redis_cls(client, **{count_name: 1, rate_name: 1.0}, prefix="")
    with pytest.raises(ValueError, match="expiry_grace must be a number of seconds from 0 to"):
        redis_cls(client, **{count_name: 1, rate_name: 1.0}, expiry_grace=-1)


def test_the_module_named_redis_does_not_shadow_redis_py():
    assert rl_redis.redis_py is redis_py and redis_py.Redis.__module__.startswith("redis")
    assert repr(rl_redis.RedisTokenBucket(fakeredis.FakeRedis(), capacity=3, refill_rate=1.5)) == (
        "RedisTokenBucket(capacity=3, refill_rate=1.5, prefix='ratelimit', expiry_grace=1.0)"
    )


# --- concurrency on a real server -------------------------------------------------------


def _hammer(url: str, requests: int, start, results) -> None:
    """One "app server": its own connection, ``requests`` requests as fast as it can."""
    client = redis_py.Redis.from_url(url)
    bucket = rl_redis.RedisTokenBucket(client, capacity=100, refill_rate=0.001)
    bucket.allow("warm-up", None)  # load the script before the race
    start.wait()
    results.put(sum(bool(bucket.allow("shared", None)) for _ in range(requests)))
    client.close()


@pytest.mark.redis_server
def test_eight_processes_never_overdraw_the_bucket(redis_server, redis_client):
    """8 processes x 500 requests at one key, a bucket of 100 that refills one token in
    1000 s: exactly 100 admitted. Without the atomic script, read-modify-write races
    would let several processes spend the same token."""
    # fork: the workers start at once, without importing everything again.
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    start, results = context.Barrier(8), context.Queue()
    workers = [
        context.Process(target=_hammer, args=(redis_server.url, 500, start, results))
        for _ in range(8)
    ]
    for worker in workers:
        worker.start()
    admitted = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    assert sum(admitted) == 100
    assert sum(1 for a in admitted if a > 0) >= 2  # the processes really raced
