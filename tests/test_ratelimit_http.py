"""sysdesign.ratelimit.http: a rate-limited HTTP service and its load generator.

Status codes and headers exactly (Retry-After rounded up, Remaining counting down,
Reset); keys isolated; two services sharing one Redis enforce one limit (fakeredis and a
real server); the service stops cleanly and frees its port and threads; the load
generator's counts add up and match the server's, and the token bucket's bound
``capacity + rate * T`` holds for every client however it behaves; the concurrent
requests limiter; bad arguments raise ValueError naming the parameter.
"""

from __future__ import annotations

import http.client
import math
import socket
import threading
import time

import fakeredis
import pytest
import redis as redis_py

from sysdesign.ratelimit import (
    FixedWindow,
    LeakingBucket,
    RedisFixedWindow,
    RedisTokenBucket,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from sysdesign.ratelimit.http import (
    ConcurrentRequests,
    LoadClient,
    ManualClock,
    RateLimitedService,
    fetch,
    load_figure,
    percentile,
    rate_limit_headers,
    reset_after,
    retry_after_seconds,
    run_load,
    run_load_virtual,
    token_bucket_bound,
)
from sysdesign.store import free_port

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After")


def rate_headers(response) -> dict[str, str]:
    return {k: v for k, v in response.headers if k in RATE_HEADERS}


def service_threads(port: int) -> list[threading.Thread]:
    names = (f"ratelimit-http-{port}", f"ratelimit-http-{port}-conn")
    return [t for t in threading.enumerate() if t.name in names]


# --- headers and status codes, exactly -----------------------------------------------


def test_token_bucket_answers_and_headers_exactly():
    clock = ManualClock()
    # 3 tokens, one back every 2.5 s: Reset and Retry-After must round 2.5 s up to 3.
    with RateLimitedService(TokenBucket(capacity=3, refill_rate=0.4), clock=clock) as service:
        answers = [fetch(service, "alice") for _ in range(4)]
        assert [a.status for a in answers] == [200, 200, 200, 429]
        assert [rate_headers(a) for a in answers] == [
            {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "3"},
            {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "5"},
            {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "8"},
            {
                "X-RateLimit-Limit": "3",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "8",
                "Retry-After": "3",
            },
        ]
        assert answers[0].body == {"hello": "alice"}
        assert answers[3].body == {"error": "rate limited", "retry_after": 2.5}
        assert answers[3].reason == "Too Many Requests"
        assert answers[3].header("Content-Type") == "application/json"

        clock.set(1.0)  # 1.5 s to the next token: Retry-After says 2, never 1
        early = fetch(service, "alice")
        assert early.status == 429 and early.header("Retry-After") == "2"
        assert early.body["retry_after"] == pytest.approx(1.5, abs=1e-12)

        clock.set(2.5)  # exactly when the first answer said to come back
        assert fetch(service, "alice").status == 200
        assert fetch(service, "alice").status == 429


def test_retry_after_rounds_up_to_whole_seconds():
    assert [retry_after_seconds(s) for s in (0.001, 0.5, 1.0, 1.0000001, 2.5, 59.99)] == [
        1,
        1,
        1,
        2,
        3,
        60,
    ]


def test_a_client_honouring_retry_after_is_admitted():
    """Retry-After is a promise: waiting that long (and no longer) gets a 200."""
    for limiter in (
        TokenBucket(capacity=2, refill_rate=0.3),
        LeakingBucket(capacity=2, leak_rate=0.7),
        FixedWindow(limit=2, window=3.5),
        SlidingWindowLog(limit=2, window=2.2),
        SlidingWindowCounter(limit=2, window=1.3),
    ):
        clock = ManualClock(0.25)
        with RateLimitedService(limiter, clock=clock) as service:
            for _ in range(5):
                while (answer := fetch(service, "k")).status == 200:
                    pass
                wait = int(answer.header("Retry-After"))
                assert wait == math.ceil(answer.body["retry_after"]), limiter
                clock.advance(wait)
                assert fetch(service, "k").status == 200, limiter


@pytest.mark.parametrize(
    ("limiter", "now", "reset"),
    [
        (FixedWindow(limit=2, window=10), 12.5, 8),  # to the end of the window [10, 20)
        (SlidingWindowLog(limit=2, window=10), 12.5, 10),  # the newest request fades at 22.5
        (SlidingWindowCounter(limit=2, window=10), 12.5, 18),  # the count fades by t = 30
        (LeakingBucket(capacity=4, leak_rate=0.5), 3.0, 2),  # one queued, drains in 2 s
    ],
)
def test_reset_for_each_algorithm(limiter, now, reset):
    clock = ManualClock(now)
    with RateLimitedService(limiter, clock=clock) as service:
        assert fetch(service, "k").header("X-RateLimit-Reset") == str(reset)


def test_reset_without_the_time_is_an_upper_bound():
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    window = RedisFixedWindow(client, limit=2, window=10)
    decision = window.allow("k")  # Redis's clock: the service does not know the time
    assert reset_after(window, decision, None) == 10
    assert rate_limit_headers(window, decision, None)["X-RateLimit-Reset"] == "10"
    counter = SlidingWindowCounter(limit=2, window=10)
    assert reset_after(counter, counter.allow("k", 1.0), None) == 20


def test_remaining_counts_down_to_zero_and_stays():
    clock = ManualClock()
    with RateLimitedService(FixedWindow(limit=5, window=60), clock=clock) as service:
        remaining = [fetch(service, "k").header("X-RateLimit-Remaining") for _ in range(7)]
    assert remaining == ["4", "3", "2", "1", "0", "0", "0"]


# --- keys --------------------------------------------------------------------------------


def test_keys_are_isolated_and_default_to_the_address():
    clock = ManualClock()
    with RateLimitedService(TokenBucket(capacity=2, refill_rate=1), clock=clock) as service:
        assert [fetch(service, "alice").status for _ in range(3)] == [200, 200, 429]
        bob = fetch(service, "bob")
        assert bob.status == 200 and bob.header("X-RateLimit-Remaining") == "1"
        anonymous = [fetch(service).status for _ in range(3)]  # no X-Client-Id: by address
        assert anonymous == [200, 200, 429]
        assert service.stats == {
            ("alice", 200): 2,
            ("alice", 429): 1,
            ("bob", 200): 1,
            ("127.0.0.1", 200): 2,
            ("127.0.0.1", 429): 1,
        }


def test_concurrent_requests_get_one_limit_in_process():
    """Eight threads, one key, no refill to speak of: exactly the capacity is admitted."""
    with RateLimitedService(TokenBucket(capacity=20, refill_rate=0.001)) as service:
        statuses = []

        def client():
            connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
            for _ in range(10):
                connection.request("GET", "/", headers={"X-Client-Id": "shared"})
                answer = connection.getresponse()
                answer.read()
                statuses.append(answer.status)
            connection.close()

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(statuses).count(200) == 20 and statuses.count(429) == 60


# --- two services, one Redis ------------------------------------------------------------


def admitted_through_two(limiter_a, limiter_b, requests=20) -> int:
    """Requests of one key spread over two services, at one instant: how many pass?"""
    clock = ManualClock(100.0)
    a = RateLimitedService(limiter_a, clock=clock)
    b = RateLimitedService(limiter_b, clock=clock)
    with a, b:
        return [fetch((a, b)[i % 2], "alice").status for i in range(requests)].count(200)


def test_two_in_process_limiters_admit_twice_the_limit():
    assert admitted_through_two(*(TokenBucket(capacity=5, refill_rate=1) for _ in range(2))) == 10


def test_two_services_sharing_fakeredis_enforce_one_limit():
    server = fakeredis.FakeServer()  # one Redis, two clients: as two app servers would have
    a, b = (
        RedisTokenBucket(fakeredis.FakeRedis(server=server), capacity=5, refill_rate=1)
        for _ in range(2)
    )
    assert admitted_through_two(a, b) == 5


@pytest.mark.redis_server
def test_two_services_sharing_a_real_redis_enforce_one_limit(redis_server, redis_client):
    a, b = (RedisTokenBucket(redis_server.client(), capacity=5, refill_rate=1) for _ in range(2))
    assert admitted_through_two(a, b) == 5


@pytest.mark.redis_server
def test_redis_clock_by_default(redis_server, redis_client):
    """No clock given: the Redis limiter reads Redis's own clock (now=None)."""
    a = RateLimitedService(RedisTokenBucket(redis_server.client(), capacity=4, refill_rate=0.01))
    b = RateLimitedService(RedisTokenBucket(redis_server.client(), capacity=4, refill_rate=0.01))
    assert a.clock is None
    with a, b:
        statuses = [fetch((a, b)[i % 2], "bob").status for i in range(10)]
    assert statuses.count(200) == 4 and statuses[:4] == [200] * 4


def test_in_process_limiters_read_the_monotonic_clock_by_default():
    assert RateLimitedService(TokenBucket(capacity=1, refill_rate=1)).clock is time.monotonic


def test_unreachable_redis_fails_closed_with_503():
    nowhere = redis_py.Redis(port=free_port(), socket_connect_timeout=0.5, retry=None)
    with RateLimitedService(RedisTokenBucket(nowhere, capacity=5, refill_rate=1)) as service:
        answer = fetch(service, "alice")
    assert answer.status == 503 and "ConnectionError" in answer.body["error"]
    assert service.stats == {("alice", 503): 1}


# --- starting and stopping ----------------------------------------------------------------


def test_stop_frees_the_port_and_the_threads_even_with_open_connections():
    service = RateLimitedService(TokenBucket(capacity=5, refill_rate=1)).start()
    port = service.port
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=5)  # a keep-alive client
    idle.request("GET", "/", headers={"X-Client-Id": "idle"})
    assert idle.getresponse().read()
    assert len(service_threads(port)) == 2  # the accept loop and the idle connection
    began = time.monotonic()
    service.stop()
    assert time.monotonic() - began < 1.0
    assert service_threads(port) == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    service.stop()  # a second stop is harmless
    idle.close()
    # Free again: a new service can listen on it (the closed connections may linger in
    # TIME_WAIT, which SO_REUSEADDR, as every HTTP server sets it, allows).
    with RateLimitedService(TokenBucket(capacity=5, refill_rate=1), port=port) as again:
        assert fetch(again, "a").status == 200


def test_context_manager_and_restart():
    service = RateLimitedService(TokenBucket(capacity=5, refill_rate=1))
    with service:
        assert service.running and fetch(service.url, "a").status == 200
        with pytest.raises(RuntimeError, match="already running"):
            service.start()
    assert not service.running
    with service:  # the limiter keeps its state across restarts
        assert fetch(service, "a").header("X-RateLimit-Remaining") in ("3", "4")


# --- the load generator ------------------------------------------------------------------

MIX = [
    LoadClient("light", 2),
    LoadClient("heavy", 10),
    LoadClient("polite", 10, "polite"),
    LoadClient("aggressive", 10, "aggressive"),
]


def test_virtual_load_counts_add_up_and_respect_the_bucket():
    capacity, rate, duration = 6, 3, 4
    clock = ManualClock()
    with RateLimitedService(TokenBucket(capacity=capacity, refill_rate=rate), clock=clock) as svc:
        result = run_load_virtual(svc, MIX, duration=duration, retry_delay=0.02)
        stats = dict(svc.stats)
    bound = token_bucket_bound(capacity, rate, duration)  # 18 per key
    for c in result.clients:
        assert c.sent == c.admitted + c.rejected + c.errors and c.errors == 0
        assert stats.get((c.name, 200), 0) == c.admitted
        assert stats.get((c.name, 429), 0) == c.rejected
        assert c.admitted <= bound
    light, heavy, polite, aggressive = result.clients
    assert (light.sent, light.admitted) == (8, 8)  # under the limit: everything passes
    assert heavy.sent == 40 and bound - 1 <= heavy.admitted <= bound
    assert bound - 1 <= aggressive.admitted <= bound  # no more than its share...
    assert aggressive.sent > 5 * polite.sent  # ...for many more requests
    assert polite.admitted >= aggressive.admitted - 1
    assert polite.success_ratio > 3 * aggressive.success_ratio
    totals = result.by_behaviour()
    assert totals["normal"]["sent"] == light.sent + heavy.sent
    # Deterministic: the same run gives the same counts.
    clock = ManualClock()
    with RateLimitedService(TokenBucket(capacity=capacity, refill_rate=rate), clock=clock) as svc:
        again = run_load_virtual(svc, MIX, duration=duration, retry_delay=0.02)
    assert [(c.sent, c.admitted) for c in again.clients] == [
        (c.sent, c.admitted) for c in result.clients
    ]


def test_coarse_retry_after_costs_a_polite_client_when_the_bucket_is_small():
    """Retry-After is whole seconds: with a bucket smaller than rate x 1 s, a client that
    honours it sleeps through tokens it cannot bank, and gets about capacity per second."""
    clients = [LoadClient("polite", 10, "polite"), LoadClient("aggressive", 10, "aggressive")]
    clock = ManualClock()
    with RateLimitedService(TokenBucket(capacity=2, refill_rate=5), clock=clock) as svc:
        result = run_load_virtual(svc, clients, duration=5, retry_delay=0.02)
    polite, aggressive = result.clients
    assert aggressive.admitted >= 0.95 * token_bucket_bound(2, 5, 5) - 1
    assert polite.admitted <= 2 * 5 + 2  # about capacity per Retry-After second


def test_real_time_load_counts_add_up():
    with RateLimitedService(TokenBucket(capacity=2, refill_rate=2)) as service:
        began = time.monotonic()
        result = run_load(service, MIX, duration=0.6)
        wall = time.monotonic() - began  # every request of the run happened within this
        stats = dict(service.stats)
    for c in result.clients:
        assert c.sent == c.admitted + c.rejected + c.errors and c.errors == 0
        assert stats.get((c.name, 200), 0) == c.admitted
        assert stats.get((c.name, 429), 0) == c.rejected
        assert len(c.latencies_ms) == c.sent
        assert c.admitted <= token_bucket_bound(2, 2, wall)  # the bucket's bound, in real time
    assert result.client("light").admitted == result.client("light").sent
    assert result.client("aggressive").rejected > 0  # wants 6 in 0.6 s, gets at most 3
    assert 0 < result.latency_ms(50) <= result.latency_ms(95) <= result.latency_ms(100)


def test_load_over_two_services_round_robin():
    clock = ManualClock()
    server = fakeredis.FakeServer()
    a, b = (
        RateLimitedService(
            RedisTokenBucket(fakeredis.FakeRedis(server=server), capacity=4, refill_rate=2),
            clock=clock,
        )
        for _ in range(2)
    )
    with a, b:
        result = run_load_virtual([a, b], [LoadClient("c", 10)], duration=3)
    assert a.stats["c", 200] + b.stats["c", 200] == result.client("c").admitted
    assert a.stats["c", 200] > 0 and b.stats["c", 200] > 0
    # One bucket: 4 + 2/s up to the last send at t = 2.9, so 9 of the bound's 10.
    assert result.client("c").admitted == 9 == math.floor(4 + 2 * 2.9)


def test_percentile_by_nearest_rank():
    assert percentile([5, 1, 4, 2, 3], 50) == 3
    assert percentile(range(1, 101), 95) == 95
    assert percentile([7], 99) == 7
    assert math.isnan(percentile([], 50))


# --- concurrent requests -------------------------------------------------------------------


def test_concurrent_requests_limiter_counts_per_key():
    slots = ConcurrentRequests(limit=2)
    assert slots.try_acquire("a") and slots.try_acquire("a")
    assert not slots.try_acquire("a")
    assert slots.try_acquire("b")  # another key has its own slots
    slots.release("a")
    assert slots.in_flight("a") == 1 and slots.try_acquire("a")
    for key in ("a", "a", "b"):
        slots.release(key)
    assert slots._in_flight == {}  # nothing kept for idle keys
    with pytest.raises(ValueError, match="no request in flight"):
        slots.release("a")


def test_service_rejects_requests_beyond_the_concurrency_limit():
    started, release = threading.Semaphore(0), threading.Event()

    def slow_api(key):
        started.release()
        release.wait(5)
        return {"done": key}

    service = RateLimitedService(
        TokenBucket(capacity=100, refill_rate=1),
        concurrency=ConcurrentRequests(limit=2),
        handler=slow_api,
        clock=ManualClock(),
    )
    with service:
        results = []
        threads = [threading.Thread(target=lambda: results.append(fetch(service, "k")))]
        threads.append(threading.Thread(target=lambda: results.append(fetch(service, "k"))))
        for t in threads:
            t.start()
        assert started.acquire(timeout=5) and started.acquire(timeout=5)  # two in flight
        third = fetch(service, "k")
        other = threading.Thread(target=lambda: results.append(fetch(service, "other")))
        other.start()
        assert started.acquire(timeout=5)  # another key is not blocked by k's requests
        release.set()
        for t in [*threads, other]:
            t.join(5)
    assert third.status == 429 and third.body == {"error": "too many concurrent requests"}
    assert third.header("Retry-After") == "1"
    assert sorted(r.status for r in results) == [200, 200, 200]
    assert service.concurrency.in_flight("k") == 0


# --- bad arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: RateLimitedService(object()), "limiter"),
        (lambda: RateLimitedService(TokenBucket(capacity=1, refill_rate=1), clock=3), "clock"),
        (lambda: RateLimitedService(TokenBucket(capacity=1, refill_rate=1), port=0), "port"),
        (
            lambda: RateLimitedService(TokenBucket(capacity=1, refill_rate=1), key_header=""),
            "key_header",
        ),
        (
            lambda: RateLimitedService(TokenBucket(capacity=1, refill_rate=1), concurrency=2),
            "concurrency",
        ),
        (lambda: LoadClient("", 1), "name"),
        (lambda: LoadClient("a", 0), "rate"),
        (lambda: LoadClient("a", float("inf")), "rate"),
        (lambda: LoadClient("a", 1, "rude"), "behaviour"),
        (lambda: run_load("http://127.0.0.1:1", [], duration=1), "clients"),
        (lambda: run_load("http://127.0.0.1:1", [LoadClient("a", 1)], duration=0), "duration"),
        (
            lambda: run_load("http://127.0.0.1:1", [LoadClient("a", 1)] * 2, duration=1),
            "clients",
        ),
        (
            lambda: run_load(
                "http://127.0.0.1:1", [LoadClient("a", 1)], duration=1, retry_delay=-1
            ),
            "retry_delay",
        ),
        (lambda: run_load("nowhere", [LoadClient("a", 1)], duration=1), "target"),
        (lambda: ConcurrentRequests(limit=0), "limit"),
        (lambda: ManualClock(-1), "start"),
        (lambda: ManualClock(5).set(4), "now"),
        (lambda: ManualClock().advance(-1), "seconds"),
        (lambda: retry_after_seconds(float("nan")), "retry_after"),
        (lambda: percentile([1], 101), "q"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_parameter(make, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        make()


def test_virtual_time_needs_one_manual_clock_and_a_positive_retry_delay():
    with RateLimitedService(TokenBucket(capacity=1, refill_rate=1)) as real_clock:
        with pytest.raises(ValueError, match="^target"):
            run_load_virtual(real_clock, [LoadClient("a", 1)], duration=1)
    a = RateLimitedService(TokenBucket(capacity=1, refill_rate=1), clock=ManualClock())
    b = RateLimitedService(TokenBucket(capacity=1, refill_rate=1), clock=ManualClock())
    with a, b:
        with pytest.raises(ValueError, match="^target"):
            run_load_virtual([a, b], [LoadClient("a", 1)], duration=1)
        with pytest.raises(ValueError, match="^retry_delay"):
            run_load_virtual(a, [LoadClient("a", 1)], duration=1, retry_delay=0)


def test_a_failing_api_answers_500_and_the_service_carries_on():
    def broken(key):
        raise RuntimeError("boom")

    service = RateLimitedService(TokenBucket(capacity=5, refill_rate=1), handler=broken)
    with service:
        answer = fetch(service, "a")
        assert answer.status == 500 and "boom" in answer.body["error"]
        service.handler = lambda key: {"ok": key}
        assert fetch(service, "a").body == {"ok": "a"}


def test_load_figure_shows_the_counts_and_the_bound():
    clock = ManualClock()
    with RateLimitedService(TokenBucket(capacity=3, refill_rate=1), clock=clock) as service:
        result = run_load_virtual(service, MIX, duration=2)
    figure = load_figure(result, bound=5)
    admitted, rejected = figure.data
    assert list(admitted.y) == [c.admitted for c in result.clients]
    assert list(rejected.y) == [c.rejected for c in result.clients]
    assert figure.layout.shapes[0].y0 == 5 and figure.layout.yaxis.type == "log"
