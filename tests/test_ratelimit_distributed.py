"""sysdesign.ratelimit.distributed: the naive read-modify-write limiter over-admits when
app servers race; the Lua script and WATCH/MULTI/EXEC never do; WATCH pays in retries and
round trips, counted exactly; the multi-window script; the race runner's parameters."""

from __future__ import annotations

import random

import fakeredis
import pytest

from sysdesign.ratelimit import algorithms
from sysdesign.ratelimit import distributed as dist
from sysdesign.ratelimit.traces import client_mix, replay


@pytest.fixture
def fake():
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


@pytest.fixture(params=["fakeredis", pytest.param("redis-server", marks=pytest.mark.redis_server)])
def client(request, fake):
    """A client of an empty Redis: the embedded fakeredis, or a real throwaway server."""
    if request.param == "fakeredis":
        return fake
    return request.getfixturevalue("redis_client")


# --- one app server: all three are the in-process FixedWindow -----------------------


@pytest.mark.parametrize("cls", [dist.NaiveFixedWindow, dist.WatchFixedWindow])
@pytest.mark.parametrize("seed", range(3))
def test_one_server_alone_decides_like_the_in_process_fixed_window(client, cls, seed):
    """Without concurrency the race cannot happen: on a random multi-client trace the
    same Decisions as FixedWindow, retry_after to the last bit, and no retries."""
    rng = random.Random(seed)
    limit, window = rng.randint(1, 5), rng.choice([0.5, 1.0, 2.5])
    trace = client_mix(duration=10, burst_size=2 * limit + 1, seed=seed, start=100.0)
    limiter = cls(client, limit=limit, window=window)
    expected = replay(algorithms.FixedWindow(limit=limit, window=window), trace)
    assert replay(limiter, trace) == expected
    assert any(expected) and not all(expected)
    assert limiter.retries == 0


def test_round_trips_by_construction(fake):
    """Naive: GET (+ SET when admitted). WATCH: WATCH, GET, then MULTI/SET/EXEC in one
    write (or UNWATCH when rejecting)."""
    naive = dist.NaiveFixedWindow(fake, limit=2, window=60)
    watch = dist.WatchFixedWindow(fake, limit=2, window=60)
    for limiter, per_admission, per_rejection in [(naive, 2, 1), (watch, 3, 3)]:
        decisions = [bool(limiter.allow("a", 5.0)) for _ in range(5)]
        assert decisions == [True, True, False, False, False]
        assert limiter.round_trips == 2 * per_admission + 3 * per_rejection


@pytest.mark.redis_server
def test_counted_round_trips_match_the_servers_own_count(redis_server, redis_client):
    """Redis's INFO commandstats sees exactly the round trips the limiters count (MULTI
    and SET travel with EXEC, so they are not round trips of their own). 7 requests, a
    limit of 3: naive 3 x (GET + SET) + 4 x GET = 10; WATCH 7 x 3 = 21."""
    app = redis_server.client()
    for cls in (dist.NaiveFixedWindow, dist.WatchFixedWindow):
        limiter = cls(app, limit=3, window=60)
        limiter.allow("warm-up", 0.0)  # opens the connection (HELLO, CLIENT SETINFO...)
        limiter.round_trips = 0
        redis_client.config_resetstat()
        for _ in range(7):
            limiter.allow("a", 0.0)
        calls = {
            name.removeprefix("cmdstat_"): stats["calls"]
            for name, stats in redis_client.info("commandstats").items()
        }
        sent = sum(calls.get(name, 0) for name in ("get", "watch", "exec", "unwatch"))
        sent += calls.get("set", 0) if cls is dist.NaiveFixedWindow else 0
        assert limiter.round_trips == sent == (10 if cls is dist.NaiveFixedWindow else 21)
    app.close()


def test_idle_keys_expire_after_their_window(fake):
    for cls in (dist.NaiveFixedWindow, dist.WatchFixedWindow):
        limiter = cls(fake, limit=3, window=10)
        limiter.allow("a", 12.5)  # window [10, 20): 7.5 s left, plus 1 s of grace
        key = limiter.redis_key("a", 12.5)
        assert key == f"{limiter.prefix}:{{a}}:1"
        assert 8400 < fake.pttl(key) <= 8500


def test_watch_gives_up_after_max_attempts(fake):
    """If another server changes the key between every read and write, EXEC fails every
    time: after max_attempts the limiter says so instead of spinning forever."""
    limiter = dist.WatchFixedWindow(fake, limit=100, window=60, max_attempts=3)
    key = limiter.redis_key("a", 1.0)
    other = fakeredis.FakeRedis(server=fake.connection_pool.connection_kwargs["server"])
    limiter.between_read_and_write = lambda: other.incr(key)
    with pytest.raises(RuntimeError, match="gave up after 3 attempts"):
        limiter.allow("a", 1.0)
    assert limiter.retries == 3
    assert int(fake.get(key)) == 3  # only the other server's writes landed


# --- many app servers: the race -----------------------------------------------------


@pytest.mark.parametrize(
    "backend", ["fakeredis", pytest.param("real", marks=pytest.mark.redis_server)]
)
def test_lockstep_is_the_worst_case_exactly(request, backend):
    """The forced interleaving: every server reads, all wait, all write. The naive limiter
    admits workers x limit; Lua exactly the limit; WATCH exactly the limit, paying
    workers - 1 retries per admission (one EXEC wins each round)."""
    url = request.getfixturevalue("redis_server").url if backend == "real" else None
    workers, limit = 8, 20
    results = {
        strategy: dist.race(
            strategy,
            url=url,
            workers=workers,
            requests_per_worker=limit,
            limit=limit,
            lockstep=True,
        )  # fmt: skip
        for strategy in dist.STRATEGIES
    }
    naive, lua, watch = results["naive"], results["lua"], results["watch"]
    assert naive.admitted == workers * limit and naive.admitted_per_worker == (limit,) * workers
    assert naive.over_admission == workers
    assert lua.admitted == watch.admitted == limit
    assert lua.retries == naive.retries == 0
    assert watch.retries == (workers - 1) * limit
    assert naive.round_trips_per_decision == 2  # everyone was admitted: GET + SET
    assert lua.round_trips_per_decision == 1
    # Every attempt costs 3: the 160 decisions and the 140 retried attempts.
    assert watch.round_trips == 3 * (watch.decisions + watch.retries)


@pytest.mark.redis_server
def test_eight_processes_over_admit_with_the_naive_limiter(redis_server):
    """8 processes, free running (no barrier between read and write), a millisecond of
    work between the read and the write: the naive limiter lets through more than the
    limit; the Lua script and WATCH exactly the limit."""
    settings = dict(url=redis_server.url, mode="processes", workers=8, limit=50)
    naive = dist.race("naive", requests_per_worker=25, think_time=0.001, **settings)
    assert naive.admitted > naive.limit
    assert sum(1 for a in naive.admitted_per_worker if a > 0) >= 2
    for strategy in ("lua", "watch"):
        result = dist.race(strategy, requests_per_worker=25, think_time=0.001, **settings)
        assert result.admitted == 50, strategy
        assert result.decisions == 200
    assert result.retries > 0  # WATCH: conflicts happened and were retried


@pytest.mark.redis_server
def test_threads_without_any_pause_still_race(redis_server):
    """No sleep, no barrier: 8 threads on a real server (the socket waits release the
    GIL). The naive limiter over-admits; WATCH never does, and its retries are counted."""
    settings = dict(url=redis_server.url, workers=8, requests_per_worker=60, limit=100)
    assert dist.race("naive", **settings).admitted > 100
    watch = dist.race("watch", **settings)
    assert watch.admitted == 100
    assert watch.round_trips == 3 * (watch.decisions + watch.retries)


def test_threads_on_the_embedded_fakeredis(monkeypatch):
    """Without a server, threads share the embedded fakeredis; a pause between read and
    write makes the naive race show there too."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = dict(workers=4, requests_per_worker=10, limit=10, think_time=0.002)
    assert dist.race("naive", **settings).admitted > 10
    assert dist.race("lua", **settings).admitted == 10
    assert dist.race("watch", **settings).admitted == 10


def test_race_result_rates():
    result = dist.RaceResult("watch", "threads", 2, 10, 40, 10, (4, 6), 20, 180, 0.5)
    assert result.over_admission == 1.0
    assert result.decisions_per_second == 80
    assert result.round_trips_per_decision == 4.5
    assert result.retries_per_decision == 0.5


# --- several windows in one script ----------------------------------------------------


def test_multi_window_limit_needs_room_in_every_window(fake):
    """3 a second and 5 a minute: the second window stops the burst at 3, the minute
    window stops the next seconds at 5 in all; a rejection counts in neither."""
    limiter = dist.MultiWindowLimit(fake, limits={1: 3, 60: 5})
    first_second = [limiter.allow("u", 120.25) for _ in range(4)]
    next_seconds = [limiter.allow("u", t) for t in (121.5, 121.6, 122.5, 123.5)]
    assert first_second == [True, True, True, False]
    assert next_seconds == [True, True, False, False]
    assert limiter.allow("u", 180.0)  # a new minute
    assert int(fake.get(limiter.redis_keys("u", 120.25)[1])) == 5


def test_multi_window_keys_share_a_slot_only_with_a_hash_tag(fake):
    from sysdesign.cluster import key_slot

    tagged = dist.MultiWindowLimit(fake, limits={1: 10, 60: 100}).redis_keys("user42", 61.5)
    plain = dist.MultiWindowLimit(fake, limits={1: 10, 60: 100}, hash_tag=False)
    plain_keys = plain.redis_keys("user42", 61.5)
    assert tagged == ["multiwindow:{user42}:1s:61", "multiwindow:{user42}:60s:1"]
    assert plain_keys == ["multiwindow:user42:1s:61", "multiwindow:user42:60s:1"]
    assert key_slot(tagged[0]) == key_slot(tagged[1]) == key_slot("user42")
    assert key_slot(plain_keys[0]) != key_slot(plain_keys[1])


# --- parameters -------------------------------------------------------------------------


def test_bad_parameters_are_named(fake, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ValueError, match="strategy must be one of"):
        dist.race("optimistic")
    with pytest.raises(ValueError, match="mode must be one of"):
        dist.race("lua", mode="coroutines")
    with pytest.raises(ValueError, match="workers must be a whole number from 1 to 64, got 0"):
        dist.race("lua", workers=0)
    with pytest.raises(ValueError, match="think_time must be a number of seconds from 0 to 1"):
        dist.race("lua", think_time=-1)
    with pytest.raises(ValueError, match="lockstep=True or a think_time, not both"):
        dist.race("lua", lockstep=True, think_time=0.1)
    with pytest.raises(ValueError, match="lockstep needs requests_per_worker >= limit"):
        dist.race("watch", lockstep=True, requests_per_worker=5, limit=10)
    with pytest.raises(ValueError, match="mode='processes' needs a real Redis"):
        dist.race("lua", mode="processes")
    with pytest.raises(ValueError, match="limit must be a whole number of at least 1"):
        dist.NaiveFixedWindow(fake, limit=0, window=1)
    with pytest.raises(ValueError, match="window must be a finite number greater than 0"):
        dist.WatchFixedWindow(fake, limit=1, window=0)
    with pytest.raises(ValueError, match="max_attempts must be a whole number"):
        dist.WatchFixedWindow(fake, limit=1, window=1, max_attempts=0)
    with pytest.raises(ValueError, match="now must be at least 0 seconds"):
        dist.NaiveFixedWindow(fake, limit=1, window=1).allow("a", -1.0)
    with pytest.raises(ValueError, match="limits must be a non-empty dict"):
        dist.MultiWindowLimit(fake, limits={})
    with pytest.raises(ValueError, match="strategy must be one of"):
        dist.make_limiter("cas", fake, limit=1, window=1.0, prefix="p")


# --- the cost under contention --------------------------------------------------------


def test_measure_contention_admits_everything_and_counts_the_cost(monkeypatch):
    """A limit no one reaches: every decision writes. Lua: one round trip each; WATCH:
    three per attempt; naive: two (and nothing over-admitted, as there is no limit to
    pass). One app server alone never retries."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    results = dist.measure_contention(workers=(1, 3), requests_per_worker=20)
    assert [(r.strategy, r.workers) for r in results] == [
        (s, w) for s in dist.STRATEGIES for w in (1, 3)
    ]
    for result in results:
        assert result.admitted == result.decisions == result.limit
        assert result.decisions_per_second > 0
        if result.strategy == "watch":
            assert result.round_trips == 3 * (result.decisions + result.retries)
        else:
            assert result.round_trips_per_decision == {"naive": 2, "lua": 1}[result.strategy]
        if result.workers == 1:
            assert result.retries == 0
    figure = dist.contention_figure(results)
    assert [trace.name.split()[0] for trace in figure.data] == ["naive", "Lua", "WATCH"]
    assert list(figure.data[1].x) == [1, 3]
