"""The course's Redis rate limiters against ``limits``: same server, same client, same trace.

``python -m benchmarks --ratelimit-only`` starts a throwaway ``redis-server``
(:class:`sysdesign.store.RedisServer`; without the binary the benchmark reports
"skipped: redis-server not installed"), opens **one** connection pool to it that both
libraries use, and replays **one** seeded multi-client trace (:func:`benchmark_trace`)
through each limiter, all "10 requests per 1 s window":

- the course's ``RedisSlidingWindowLog`` against limits' ``MovingWindowRateLimiter``, both
  on the trace's clock: the sliding log gets the trace's times as ``now``; limits' moving
  window reads ``time.time()`` inside ``limits.storage.redis``, which the benchmark points
  at the same times (:func:`limits_clock`). The two then make the same decisions (they
  differ only for a request exactly one window after another of its key, which the trace
  avoids: :func:`exact_boundary_ties`).
- the course's ``RedisSlidingWindowCounter`` against limits'
  ``SlidingWindowCounterRateLimiter``, both on Redis's clock: limits reads it through its
  keys' TTLs and cannot be given times, so the course's counter gets ``now=None`` too. The
  trace is replayed as fast as the limiters go; both see the same compressed timeline.
- limits' two strategies again, each ``hit()`` followed by ``get_window_stats()``
  ("+ stats"): ``hit()`` answers only yes or no, so an API that sends ``Retry-After`` and
  the remaining count needs that second round trip; the course's ``Decision`` carries
  both in its one.

For each limiter: **decisions per second** (the fastest of ``rounds`` passes, the limiters
taking turns every few hundred requests so that a machine that gets busier or quieter
slows them alike), **round trips per decision** (commands the client sent, counted by the
connections), **Redis commands per decision** (``INFO commandstats`` after
``CONFIG RESETSTAT``: every command Redis ran, the ``EVALSHA`` and the commands inside its
Lua script) and the fraction of requests admitted. ``ratio_vs_limits`` is decisions per
second over those of limits' plain ``hit()`` for the same algorithm (1.0 for that one).
"""

from __future__ import annotations

import bisect
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import redis

from benchmarks.stats import format_table
from sysdesign.ratelimit import RedisSlidingWindowCounter, RedisSlidingWindowLog, client_mix
from sysdesign.ratelimit.tradeoffs import command_calls
from sysdesign.store import RedisServer, redis_server_path

LIMIT = 10  # requests ...
WINDOW = 1  # ... per second: limits takes whole seconds
DEFAULT_REQUESTS = 6_000
DEFAULT_ROUNDS = 3
SEED = 2024
SKIPPED_NO_SERVER = "skipped: redis-server not installed"


# --- the trace ------------------------------------------------------------------------


def benchmark_trace(requests: int = DEFAULT_REQUESTS, seed: int = SEED) -> list[tuple[float, str]]:
    """About ``requests`` requests from 220 clients, about 600 a second: 200 steady
    clients at 2/s, 20 that send bursts of 20 (twice the limit) every 2 s on average."""
    if requests < 1:
        raise ValueError(f"requests must be at least 1, got {requests!r}")
    trace = client_mix(
        duration=requests / 600,
        steady_clients=200,
        steady_rate=2.0,
        bursty_clients=20,
        burst_size=20,
        bursts_per_second=0.5,
        seed=seed,
    )
    ties = exact_boundary_ties(trace, WINDOW)
    if ties:
        raise RuntimeError(f"seed {seed} gives {ties} exact-boundary ties; pick another seed")
    return trace


def exact_boundary_ties(
    trace: Sequence[tuple[float, str]], window: float, tolerance: float = 1e-9
) -> int:
    """How many requests come exactly ``window`` (within ``tolerance``) after another
    request of the same key: the one case where the course's sliding log ``(now - window,
    now]`` and limits' moving window ``[now - window, now]`` may decide differently."""
    by_key: dict[str, list[float]] = {}
    for now, key in trace:
        by_key.setdefault(key, []).append(now)
    ties = 0
    for times in by_key.values():
        for t in times:
            i = bisect.bisect_left(times, t - window - tolerance)
            ties += i < len(times) and times[i] <= t - window + tolerance
    return ties


# --- counting round trips, driving limits' clock ---------------------------------------


def counting_pool(host: str, port: int) -> tuple[redis.ConnectionPool, Callable[[], int]]:
    """A connection pool whose connections count what they send, and ``sent()``: how many
    times a connection sent commands, i.e. round trips (without pipelining, one command
    each). Both libraries share the pool, so the count covers both."""
    count = [0]

    class CountingConnection(redis.Connection):
        def send_packed_command(self, command, check_health=True):
            count[0] += 1
            return super().send_packed_command(command, check_health)

    pool = redis.ConnectionPool(
        connection_class=CountingConnection, host=host, port=port, decode_responses=True
    )
    return pool, lambda: count[0]


class TraceClock:
    """Stands in for the ``time`` module inside ``limits.storage.redis``."""

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now


@contextlib.contextmanager
def limits_clock(clock: TraceClock) -> Iterator[None]:
    """While inside, limits' Redis storage reads ``clock.now`` instead of ``time.time()``."""
    import limits.storage.redis as module

    saved = module.time
    module.time = clock
    try:
        yield
    finally:
        module.time = saved


# --- the limiters ---------------------------------------------------------------------


@dataclass
class Contender:
    """A limiter under test: ``replay(trace)`` returns how many requests it admitted."""

    name: str
    clock: str  # "trace" or "redis"
    replay: Callable[[Sequence[tuple[float, str]]], int]
    compared_with: str | None = None  # the limits counterpart, for a course limiter


def contenders(client: redis.Redis, pool: redis.ConnectionPool, url: str) -> list[Contender]:
    """The course's two limiters, limits' two strategies, and each strategy followed by
    ``get_window_stats`` ("+ stats"), on ``pool``'s server."""
    from limits import RateLimitItemPerSecond
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

    storage = RedisStorage(url, connection_pool=pool)  # the same pool: the same client
    item = RateLimitItemPerSecond(LIMIT, WINDOW)
    course_log = RedisSlidingWindowLog(client, limit=LIMIT, window=WINDOW)
    course_counter = RedisSlidingWindowCounter(client, limit=LIMIT, window=WINDOW)
    moving_window = MovingWindowRateLimiter(storage)
    sliding_counter = SlidingWindowCounterRateLimiter(storage)
    clock = TraceClock()

    def course_log_replay(trace):
        return sum(course_log.allow(key, now).admitted for now, key in trace)

    def moving_replay(trace):
        admitted = 0
        with limits_clock(clock):
            for now, key in trace:
                clock.now = now
                admitted += moving_window.hit(item, key)
        return admitted

    def course_counter_replay(trace):
        return sum(course_counter.allow(key).admitted for _now, key in trace)

    def sliding_replay(trace):
        return sum(sliding_counter.hit(item, key) for _now, key in trace)

    # What a 429 with Retry-After and a remaining count needs from limits: hit() answers
    # only yes or no, get_window_stats() the rest, in a second round trip. The course's
    # Decision carries both in its one round trip.
    def moving_stats_replay(trace):
        admitted = 0
        with limits_clock(clock):
            for now, key in trace:
                clock.now = now
                admitted += moving_window.hit(item, key)
                moving_window.get_window_stats(item, key)
        return admitted

    def sliding_stats_replay(trace):
        admitted = 0
        for _now, key in trace:
            admitted += sliding_counter.hit(item, key)
            sliding_counter.get_window_stats(item, key)
        return admitted

    moving, sliding = "limits MovingWindowRateLimiter", "limits SlidingWindowCounter"
    return [
        Contender("course RedisSlidingWindowLog", "trace", course_log_replay, moving),
        Contender(moving, "trace", moving_replay),
        Contender(f"{moving} + stats", "trace", moving_stats_replay, moving),
        Contender("course RedisSlidingWindowCounter", "redis", course_counter_replay, sliding),
        Contender(sliding, "redis", sliding_replay),
        Contender(f"{sliding} + stats", "redis", sliding_stats_replay, sliding),
    ]


# --- running and reporting ------------------------------------------------------------


@dataclass
class LimiterTiming:
    """One limiter's best pass over the trace."""

    name: str
    clock: str
    decisions: int
    seconds: float
    admitted: int
    round_trips: int
    commands: dict[str, int]  # INFO commandstats calls during the pass
    compared_with: str | None = None
    ratio_vs_limits: float | None = None

    @property
    def decisions_per_s(self) -> float:
        return self.decisions / self.seconds

    @property
    def round_trips_per_decision(self) -> float:
        return self.round_trips / self.decisions

    @property
    def commands_per_decision(self) -> float:
        return sum(self.commands.values()) / self.decisions

    def to_json(self) -> dict:
        return {
            "decisions_per_s": round(self.decisions_per_s, 1),
            "commands_per_decision": round(self.commands_per_decision, 3),
            "round_trips_per_decision": round(self.round_trips_per_decision, 3),
            "ratio_vs_limits": None if self.ratio_vs_limits is None else round(
                self.ratio_vs_limits, 3
            ),
            "admitted_fraction": round(self.admitted / self.decisions, 4),
            "clock": self.clock,
            "compared_with": self.compared_with,
            "decisions": self.decisions,
        }  # fmt: skip


@dataclass
class RatelimitReport:
    """The benchmark's results, or why there are none (``skipped``, ``error``)."""

    results: list[LimiterTiming] = field(default_factory=list)
    requests: int = 0
    skipped: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _count_commands(client, sent, contender: Contender, trace) -> tuple[int, int, dict]:
    """One pass on an empty database: ``(admitted, round trips, INFO commandstats calls)``."""
    client.flushdb()
    client.config_resetstat()
    sent_before = sent()
    admitted = contender.replay(trace)
    round_trips = sent() - sent_before
    calls = command_calls(client)
    for own in ("config|resetstat", "info"):  # the benchmark's, not the limiter's
        calls.pop(own, None)
    return int(admitted), round_trips, calls


def _timed_passes(client, runners: list[Contender], trace, rounds: int, chunk: int) -> list:
    """Seconds per contender for each of ``rounds`` passes over ``trace``.

    The contenders take turns every ``chunk`` requests (their keys never collide), in a
    rotating order, so that a machine that gets busier or quieter mid-run slows them alike.
    """
    passes = []
    for _round in range(rounds):
        client.flushdb()
        seconds = [0.0] * len(runners)
        for n, start in enumerate(range(0, len(trace), chunk)):
            part = trace[start : start + chunk]
            for k in range(len(runners)):
                i = (n + k) % len(runners)
                begin = time.perf_counter()
                runners[i].replay(part)
                seconds[i] += time.perf_counter() - begin
        passes.append(seconds)
    return passes


def benchmark_on_server(
    server: RedisServer,
    trace: Sequence[tuple[float, str]],
    rounds: int = DEFAULT_ROUNDS,
    chunk: int = 250,
) -> list[LimiterTiming]:
    """Replay ``trace`` through each contender: once alone to count round trips and
    commands, then ``rounds`` timed passes taking turns (:func:`_timed_passes`); each
    contender's fastest pass is its time. Flushes the server's database between passes."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds!r}")
    pool, sent = counting_pool("127.0.0.1", server.port)
    client = redis.Redis(connection_pool=pool)
    try:
        runners = contenders(client, pool, server.url)
        for contender in runners:  # load the scripts, open the connection
            contender.replay([(0.0, "warm-up")])
        counted = [_count_commands(client, sent, c, trace) for c in runners]
        passes = _timed_passes(client, runners, trace, rounds, chunk)
        results = []
        for i, (c, (admitted, round_trips, calls)) in enumerate(zip(runners, counted, strict=True)):
            seconds = min(p[i] for p in passes)
            results.append(
                LimiterTiming(
                    c.name, c.clock, len(trace), seconds, admitted, round_trips, calls,
                    c.compared_with,
                )
            )  # fmt: skip
        by_name = {r.name: r for r in results}
        for r in results:
            other = by_name[r.compared_with] if r.compared_with else r
            r.ratio_vs_limits = r.decisions_per_s / other.decisions_per_s
        return results
    finally:
        client.close()
        pool.disconnect()


def run_ratelimit(
    requests: int = DEFAULT_REQUESTS, rounds: int = DEFAULT_ROUNDS, seed: int = SEED
) -> RatelimitReport:
    """Start a server, run :func:`benchmark_on_server`, stop it. Never raises: a missing
    ``redis-server`` is ``skipped``, any failure a one-line ``error``."""
    if redis_server_path() is None:
        return RatelimitReport(skipped=SKIPPED_NO_SERVER)
    try:
        trace = benchmark_trace(requests, seed)
        with RedisServer() as server:
            results = benchmark_on_server(server, trace, rounds)
        return RatelimitReport(results=results, requests=len(trace))
    except Exception as exc:  # report it as one line, like an explorer's error
        return RatelimitReport(error=f"{type(exc).__name__}: {' '.join(str(exc).split())}")


def ratelimit_table(report: RatelimitReport) -> str:
    """The results as a table, or the one line saying why there are none."""
    if report.skipped:
        return f"ratelimit benchmark: {report.skipped}"
    if report.error:
        return f"ratelimit benchmark: ERROR  {report.error}"
    rows = [
        [
            r.name,
            r.clock,
            f"{r.decisions_per_s:,.0f}",
            "" if r.compared_with is None else f"{r.ratio_vs_limits:.2f}x",
            f"{r.round_trips_per_decision:.2f}",
            f"{r.commands_per_decision:.2f}",
            f"{r.admitted / r.decisions:.1%}",
        ]
        for r in report.results
    ]
    headers = [
        "limiter (Redis, 10/s)",
        "clock",
        "decisions/s",
        "vs limits",
        "round trips",
        "commands",
        "admitted",
    ]
    note = (
        f"\n{report.requests:,} requests per pass; round trips and Redis commands (incl. "
        "those inside Lua scripts) per decision"
    )
    return format_table(headers, rows, "llrrrrr") + note


def ratelimit_json(report: RatelimitReport) -> dict:
    """``{name: {"decisions_per_s", "commands_per_decision", "ratio_vs_limits", ...}}``."""
    return {r.name: r.to_json() for r in report.results}
