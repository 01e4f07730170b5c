"""Rate limiter trade-offs, measured: bursts at window boundaries, accuracy, memory, speed.

The five limiters of :mod:`sysdesign.ratelimit` are set to the same budget, ``limit``
requests per ``window`` seconds (:func:`limiters_for`), and compared on four questions:

- **Bursts at a window boundary** (:func:`boundary_bursts`): a client sends ``limit``
  requests just before a fixed window ends and ``limit`` just after. How many requests
  does each limiter admit in one window-length span (:func:`max_in_span`, exact)?
- **Accuracy** (:func:`counter_accuracy`): the sliding window counter estimates the
  sliding count from two fixed-window counters. How often does the estimate decide
  differently from the exact count (the sliding log's rule) on a large multi-client trace?
  Cloudflare published 0.003% of 400M requests (:data:`CLOUDFLARE`).
- **Memory per key** (:func:`state_memory`, :func:`used_memory_per_key`,
  :func:`memory_by_limit`): what each Redis limiter stores, and the bytes Redis spends on
  it (``MEMORY USAGE``, ``INFO memory``; a real server only, fakeredis has neither).
- **Decisions per second** (:func:`measure_throughput`), in-process and in Redis, with
  what each decision costs a real Redis (``INFO commandstats``): one script call, and the
  commands it runs.

Each question has a pure function that the notebook, the tests and the explorers
``ratelimit-boundary`` and ``ratelimit-accuracy`` call.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

import plotly.graph_objects as go
import redis as redis_py

from sysdesign.explore import Choice, Slider, explorer
from sysdesign.figures import COLORS, new_figure
from sysdesign.ratelimit.algorithms import (
    FixedWindow,
    LeakingBucket,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
    _positive_number,
    _whole_number,
)
from sysdesign.ratelimit.redis import (
    RedisFixedWindow,
    RedisLeakingBucket,
    RedisSlidingWindowCounter,
    RedisSlidingWindowLog,
    RedisTokenBucket,
)
from sysdesign.ratelimit.traces import Trace, client_mix

#: The five algorithms, in the order every table and figure lists them.
ALGORITHMS = (
    "token bucket",
    "leaking bucket",
    "fixed window",
    "sliding window log",
    "sliding window counter",
)


def limiters_for(limit: int, window: float) -> dict[str, object]:
    """The five in-process limiters, each set to the budget "``limit`` per ``window`` s".

    The buckets hold ``limit`` and refill (drain) at ``limit / window`` per second: the
    same long-run rate, and the same burst a full bucket allows.
    """
    _whole_number("limit", limit)
    _positive_number("window", window)
    return {
        "token bucket": TokenBucket(capacity=limit, refill_rate=limit / window),
        "leaking bucket": LeakingBucket(capacity=limit, leak_rate=limit / window),
        "fixed window": FixedWindow(limit=limit, window=window),
        "sliding window log": SlidingWindowLog(limit=limit, window=window),
        "sliding window counter": SlidingWindowCounter(limit=limit, window=window),
    }


def redis_limiters_for(
    client: redis_py.Redis,
    limit: int,
    window: float,
    *,
    prefix: str = "tradeoffs",
    expiry_grace: float = 1.0,
) -> dict[str, object]:
    """The five Redis limiters with the budget of :func:`limiters_for`, keys under ``prefix``."""
    _whole_number("limit", limit)
    _positive_number("window", window)
    common = dict(prefix=prefix, expiry_grace=expiry_grace)
    rate = limit / window
    return {
        "token bucket": RedisTokenBucket(client, capacity=limit, refill_rate=rate, **common),
        "leaking bucket": RedisLeakingBucket(client, capacity=limit, leak_rate=rate, **common),
        "fixed window": RedisFixedWindow(client, limit=limit, window=window, **common),
        "sliding window log": RedisSlidingWindowLog(client, limit=limit, window=window, **common),
        "sliding window counter": RedisSlidingWindowCounter(
            client, limit=limit, window=window, **common
        ),
    }


# --- 1. bursts at a window boundary ---------------------------------------------------

#: How the client behaves around the boundary (see :func:`boundary_trace`).
PATTERNS = ("two bursts", "burst, then flood")


def max_in_span(times: Sequence[float], span: float) -> int:
    """The most of ``times`` (sorted) that fit in any interval of length ``span``.

    Intervals are half-open, ``(t - span, t]``, the sliding log's window: two requests
    exactly ``span`` apart are never in the same one. Exact, in one pass.
    """
    _positive_number("span", span)
    best = start = 0
    for end, t in enumerate(times):
        if end and t < times[end - 1]:
            raise ValueError(f"times must be sorted, got {times[end - 1]!r} before {t!r}")
        while times[start] <= t - span:
            start += 1
        best = max(best, end - start + 1)
    return best


def boundary_trace(
    limit: int, window: float, offset: float, pattern: str = "two bursts"
) -> tuple[list[float], float]:
    """One client's request times around a window boundary, and the boundary.

    The boundary is ``B = 10 * window`` (windows are ``[k*window, (k+1)*window)``). First
    ``limit`` requests evenly spread over ``[B - offset*window, B)``; then

    - ``"two bursts"``: ``limit`` more evenly over ``[B, B + offset*window)``;
    - ``"burst, then flood"``: ``4 * limit`` more evenly over the next window ``[B, B + window)``,
      four times the budget, to find what each limiter lets through over a whole window.
    """
    _whole_number("limit", limit)
    _positive_number("window", window)
    if isinstance(offset, bool) or not isinstance(offset, int | float) or not 0 < offset <= 0.5:
        raise ValueError(
            f"offset must be a fraction of the window in (0, 0.5], got {offset!r} "
            "(both bursts then fit within one window)"
        )
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {list(PATTERNS)}, got {pattern!r}")
    boundary = 10 * window
    spread = offset * window
    before = [boundary - spread + i * spread / limit for i in range(limit)]
    if pattern == "two bursts":
        after = [boundary + i * spread / limit for i in range(limit)]
    else:
        after = [boundary + i * window / (4 * limit) for i in range(4 * limit)]
    return before + after, boundary


@dataclass(frozen=True)
class BoundaryResult:
    """What each algorithm admitted of :func:`boundary_trace`'s requests."""

    limit: int
    window: float
    offset: float
    pattern: str
    boundary: float
    times: list[float]
    admitted: dict[str, list[float]]  # algorithm -> times of its admitted requests
    max_in_window: dict[str, int]  # algorithm -> most admitted in any window-length span


def boundary_bursts(
    limit: int = 10, window: float = 1.0, offset: float = 0.05, pattern: str = "two bursts"
) -> BoundaryResult:
    """Run :func:`boundary_trace` through each of the five limiters (:func:`limiters_for`)."""
    times, boundary = boundary_trace(limit, window, offset, pattern)
    admitted = {}
    for name, limiter in limiters_for(limit, window).items():
        admitted[name] = [t for t in times if limiter.allow("client", t)]
    return BoundaryResult(
        limit=limit,
        window=window,
        offset=offset,
        pattern=pattern,
        boundary=boundary,
        times=times,
        admitted=admitted,
        max_in_window={name: max_in_span(ts, window) for name, ts in admitted.items()},
    )


def boundary_figure(result: BoundaryResult) -> go.Figure:
    """Left: admitted requests so far, by time around the boundary. Right: the most
    admitted in any window-length span, against the limit."""
    b, limit = result.boundary, result.limit
    first, last = result.times[0] - b, result.times[-1] - b
    pad = 0.05 * (last - first)
    data = []
    for i, name in enumerate(ALGORITHMS):
        xs = [first - pad] + [t - b for t in result.admitted[name]] + [last + pad]
        ys = [0, *range(1, len(result.admitted[name]) + 1), len(result.admitted[name])]
        data.append(
            dict(
                type="scatter",
                x=xs,
                y=ys,
                mode="lines",
                line=dict(shape="hv", color=COLORS[i], width=2, dash="dot" if i == 1 else None),
                name=name,
                legendgroup=name,
            )
        )
    data.append(
        dict(
            type="bar",
            orientation="h",
            x=[result.max_in_window[name] for name in ALGORITHMS],
            y=list(ALGORITHMS),
            marker=dict(color=COLORS[:5]),
            xaxis="x2",
            yaxis="y2",
            showlegend=False,
            text=[f"{result.max_in_window[n] / limit:.2g}x" for n in ALGORITHMS],
            textposition="auto",
        )
    )
    line = dict(color="#444", width=1, dash="dash")
    shapes = [
        dict(type="line", xref="x", yref="y domain", x0=0, x1=0, y0=0, y1=1, line=line),
        dict(type="line", xref="x2", yref="y2 domain", x0=limit, x1=limit, y0=0, y1=1, line=line),
    ]
    return new_figure(
        f"{result.pattern.capitalize()} around a window boundary (limit {limit} "
        f"per {result.window:g} s)",
        height=420,
        data=data,
        shapes=shapes,
        xaxis=dict(domain=[0, 0.46], title="seconds from the window boundary"),
        yaxis=dict(title="admitted so far", rangemode="tozero"),
        xaxis2=dict(domain=[0.74, 1], title=f"most admitted in {result.window:g} s",
                    rangemode="tozero"),
        yaxis2=dict(anchor="x2"),
        legend=dict(orientation="h", x=0, y=-0.22),
        margin=dict(l=60, r=20, t=50, b=90),
    )  # fmt: skip


def boundary_table(result: BoundaryResult) -> str:
    """One line per algorithm: admitted, and the most admitted in any window-length span."""
    lines = []
    for name in ALGORITHMS:
        most = result.max_in_window[name]
        lines.append(
            f"{name:23} admitted {len(result.admitted[name]):3} of {len(result.times)}, "
            f"most in any {result.window:g} s: {most:3} ({most / result.limit:.1f}x the limit)"
        )
    return "\n".join(lines)


def describe_boundary(result: BoundaryResult) -> str:
    parts = [f"{name} {result.max_in_window[name]}" for name in ALGORITHMS]
    return (
        f"Most admitted in any {result.window:g} s span (limit {result.limit}): "
        + ", ".join(parts)
        + "."
    )


boundary_explorer = explorer(
    "ratelimit-boundary",
    boundary_bursts,
    boundary_figure,
    title="Bursts at a window boundary",
    describe=describe_boundary,
    limit=Slider(10, 1, 50, integer=True, label="limit (requests per window)"),
    window=Slider(1.0, 0.5, 10, step=0.5, label="window (s)"),
    offset=Slider(0.05, 0.01, 0.5, step=0.01, label="burst spread (fraction of the window)"),
    pattern=Choice("two bursts", PATTERNS, label="client"),
)


# --- 2. accuracy of the sliding window counter ----------------------------------------

#: Cloudflare, "Counting things, a lot of different things" (2017): on 400M requests from
#: 270K sources, 0.003% of requests were wrongly allowed or rate limited; the approximate
#: rate was off by 6% on average from the real one.
CLOUDFLARE = {
    "requests": 400_000_000,
    "sources": 270_000,
    "wrong_fraction": 0.003 / 100,
    "mean_rate_error": 0.06,
}

#: The course's large trace: 1,000 well-behaved clients at a tenth of the limit (Poisson,
#: 1 request/s against 10 per second), and 20 abusive ones (2% of the clients) that fire
#: bursts of twice the limit (20 requests within 50 ms) every 20 s on average. About
#: 307K requests in 300 s, 2% of them from the abusive clients.
ACCURACY_WORKLOAD = dict(
    duration=300.0,
    steady_clients=1000,
    steady_rate=1.0,
    bursty_clients=20,
    burst_size=20,
    bursts_per_second=0.05,
)
ACCURACY_LIMIT = 10
ACCURACY_WINDOW = 1.0


@dataclass(frozen=True)
class DecisionErrors:
    """Requests and the counter's wrong decisions among them."""

    requests: int = 0
    wrongly_allowed: int = 0
    wrongly_rejected: int = 0

    @property
    def wrong(self) -> int:
        return self.wrongly_allowed + self.wrongly_rejected

    @property
    def wrong_fraction(self) -> float:
        return self.wrong / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class ClientStory:
    """One client's requests as the judge saw them: before each, the exact count in the
    window and the counter's estimate; after it, the verdict on the counter's decision."""

    key: str
    times: tuple[float, ...]
    exact: tuple[int, ...]
    estimate: tuple[float, ...]
    verdict: tuple[str, ...]  # "right", "wrongly allowed", "wrongly rejected"

    @property
    def wrong(self) -> int:
        return sum(v != "right" for v in self.verdict)


@dataclass(frozen=True)
class AccuracyResult:
    """:func:`counter_accuracy`'s answer: errors overall and per client group, how far
    the estimate is from the exact count near the limit, and the followed clients' stories."""

    limit: int
    window: float
    total: DecisionErrors
    groups: dict[str, DecisionErrors]  # "steady", "bursty": the key up to its last "-"
    mean_error_near_limit: float  # mean |estimate - exact| / exact where exact >= limit/2
    stories: dict[str, ClientStory] = field(default_factory=dict)

    def worst_story(self) -> ClientStory | None:
        """The followed client with the most wrong decisions (then the most requests)."""
        if not self.stories:
            return None
        return max(self.stories.values(), key=lambda s: (s.wrong, len(s.times)))


def counter_accuracy(
    trace: Iterable[tuple[float, str]],
    *,
    limit: int,
    window: float,
    follow: Collection[str] = (),
) -> AccuracyResult:
    """Replay ``trace`` through a :class:`SlidingWindowCounter` and judge every decision
    against the exact rule: fewer than ``limit`` admitted requests in ``(now - window, now]``.

    Both look at the same history, the requests the counter admitted, so each decision is
    judged on its own and errors do not snowball: *wrongly allowed* means the counter
    admitted a request the exact count would have rejected, *wrongly rejected* the
    opposite. For the clients named in ``follow``, every step is recorded (a
    :class:`ClientStory`) for a figure.
    """
    counter = SlidingWindowCounter(limit=limit, window=window)
    admitted_log: dict[str, deque] = {}
    tally: dict[str, list[int]] = {}  # group -> [requests, wrongly allowed, wrongly rejected]
    near_limit_error, near_limit_count = 0.0, 0
    steps: dict[str, list[tuple]] = {key: [] for key in follow}
    for now, key in trace:
        log = admitted_log.get(key)
        if log is None:
            log = admitted_log[key] = deque()
        while log and log[0] <= now - window:  # the exact count, as the sliding log keeps it
            log.popleft()
        exact = len(log)
        estimate = counter._estimate_at(counter._states.get(key), now)
        admitted = counter.allow(key, now).admitted
        if admitted:
            log.append(now)
        verdict = "right"
        if admitted and exact >= limit:
            verdict = "wrongly allowed"
        elif not admitted and exact < limit:
            verdict = "wrongly rejected"
        counts = tally.setdefault(key.rpartition("-")[0] or key, [0, 0, 0])
        counts[0] += 1
        if verdict != "right":
            counts[1 if admitted else 2] += 1
        if 2 * exact >= limit:
            near_limit_error += abs(estimate - exact) / exact
            near_limit_count += 1
        if key in steps:
            steps[key].append((now, exact, estimate, verdict))
    groups = {name: DecisionErrors(*counts) for name, counts in sorted(tally.items())}
    total = DecisionErrors(*(sum(g[i] for g in tally.values()) for i in range(3)))
    stories = {
        key: ClientStory(key, *(tuple(column) for column in zip(*rows, strict=True)))
        if rows
        else ClientStory(key, (), (), (), ())
        for key, rows in steps.items()
    }
    return AccuracyResult(
        limit=limit,
        window=window,
        total=total,
        groups=groups,
        mean_error_near_limit=near_limit_error / near_limit_count if near_limit_count else 0.0,
        stories=stories,
    )


def accuracy_trace(seed: int = 2017) -> Trace:
    """The large trace of :data:`ACCURACY_WORKLOAD` (about 307K requests)."""
    return client_mix(**ACCURACY_WORKLOAD, seed=seed)


#: The explorer's small trace: 30 steady clients at 1 request/s for 60 s, plus a choice of
#: bursty clients (bursts of 20 within 50 ms every 10 s on average): 1.8K to 2.9K requests.
SMALL_ACCURACY_WORKLOAD = dict(
    duration=60.0, steady_clients=30, steady_rate=1.0, burst_size=20, bursts_per_second=0.1
)
BURSTY_CHOICES = (0, 1, 3, 10)


@functools.lru_cache(maxsize=len(BURSTY_CHOICES))
def small_accuracy_trace(bursty_clients: int) -> Trace:
    """The explorer's precomputed trace (built once per choice, then reused)."""
    return client_mix(**SMALL_ACCURACY_WORKLOAD, bursty_clients=bursty_clients, seed=7)


def accuracy_sample(limit: int = 10, window: float = 1.0, bursty_clients: int = 3):
    """:func:`counter_accuracy` on the small trace, following every client (the figure
    shows the one with the most wrong decisions)."""
    if bursty_clients not in BURSTY_CHOICES:
        raise ValueError(
            f"bursty_clients must be one of {list(BURSTY_CHOICES)}, got {bursty_clients!r}"
        )
    trace = small_accuracy_trace(bursty_clients)
    keys = sorted({key for _now, key in trace})
    return counter_accuracy(trace, limit=limit, window=window, follow=keys)


def accuracy_figure(result: AccuracyResult) -> go.Figure:
    """Left: the exact count and the counter's estimate before each request of the
    followed client with the most wrong decisions, wrong decisions marked. Right: the share
    of wrong decisions per client group."""
    story = result.worst_story() or ClientStory("nobody", (), (), (), ())
    wrong = {"wrongly allowed": ("#d62728", "x"), "wrongly rejected": ("#ff7f0e", "diamond")}
    data = [
        dict(type="scatter", x=story.times, y=story.exact, mode="markers",
             marker=dict(color="#7f7f7f", size=6), name="exact count (sliding log)"),
        dict(type="scatter", x=story.times, y=story.estimate, mode="markers",
             marker=dict(color=COLORS[0], size=5, symbol="circle-open"),
             name="counter's estimate"),
    ]  # fmt: skip
    for verdict, (color, symbol) in wrong.items():
        picked = [i for i, v in enumerate(story.verdict) if v == verdict]
        data.append(
            dict(
                type="scatter",
                x=[story.times[i] for i in picked],
                y=[story.estimate[i] for i in picked],
                mode="markers",
                marker=dict(color=color, size=12, symbol=symbol, line=dict(width=2, color=color)),
                name=verdict,
            )
        )
    groups = {**result.groups, "all": result.total}
    for verdict, (color, _symbol) in wrong.items():
        attr = verdict.replace(" ", "_")
        data.append(
            dict(
                type="bar",
                x=list(groups),
                y=[100 * getattr(g, attr) / max(g.requests, 1) for g in groups.values()],
                marker=dict(color=color),
                xaxis="x2",
                yaxis="y2",
                showlegend=False,
                name=verdict,
            )
        )  # fmt: skip
    limit_line = dict(
        type="line", xref="x domain", yref="y", x0=0, x1=1, y0=result.limit, y1=result.limit,
        line=dict(color="#444", width=1, dash="dash"),
    )  # fmt: skip
    return new_figure(
        f"Sliding window counter vs the exact count, {story.key} (limit {result.limit} "
        f"per {result.window:g} s)",
        height=400,
        data=data,
        shapes=[limit_line],
        barmode="stack",
        xaxis=dict(domain=[0, 0.62], title="time (s)"),
        yaxis=dict(title="requests in the last window", rangemode="tozero"),
        xaxis2=dict(domain=[0.74, 1], title="client group"),
        yaxis2=dict(anchor="x2", title="% of requests decided wrongly", rangemode="tozero"),
        legend=dict(orientation="h", x=0, y=-0.2),
        margin=dict(l=60, r=20, t=50, b=80),
    )


def accuracy_table(result: AccuracyResult) -> str:
    """Requests and wrong decisions per client group, overall, and Cloudflare's figures."""
    header = f"{'clients':11}{'requests':>12}{'wrongly allowed':>17}{'wrongly rejected':>18}"
    lines = [header + f"{'wrong':>9}"]
    for name, g in {**result.groups, "all": result.total}.items():
        lines.append(
            f"{name:11}{g.requests:>12,}{g.wrongly_allowed:>17,}{g.wrongly_rejected:>18,}"
            f"{g.wrong_fraction:>9.3%}"
        )
    lines.append(
        f"{'Cloudflare':11}{CLOUDFLARE['requests']:>12,}{'':>35}{CLOUDFLARE['wrong_fraction']:>9.3%}"
    )
    lines.append(
        f"estimate vs exact count near the limit: off by {result.mean_error_near_limit:.1%} on "
        f"average (Cloudflare: {CLOUDFLARE['mean_rate_error']:.0%})"
    )
    return "\n".join(lines)


def describe_accuracy(result: AccuracyResult) -> str:
    t = result.total
    return (
        f"{t.requests:,} requests: {t.wrongly_allowed} wrongly allowed, "
        f"{t.wrongly_rejected} wrongly rejected ({t.wrong_fraction:.3%}; Cloudflare "
        f"measured {CLOUDFLARE['wrong_fraction']:.3%} on its traffic)."
    )


accuracy_explorer = explorer(
    "ratelimit-accuracy",
    accuracy_sample,
    accuracy_figure,
    title="How often does the sliding window counter decide wrongly?",
    describe=describe_accuracy,
    limit=Slider(10, 2, 40, integer=True, label="limit (requests per window)"),
    window=Slider(1.0, 0.5, 5, step=0.5, label="window (s)"),
    bursty_clients=Choice(3, BURSTY_CHOICES, label="bursty clients (of 30 steady)"),
)


# --- 3. memory per key ----------------------------------------------------------------


def memory_usage(client: redis_py.Redis, key: str) -> int | None:
    """``MEMORY USAGE key SAMPLES 0`` (every element counted), or None where the server
    has no such command (the embedded fakeredis)."""
    try:
        return client.memory_usage(key, samples=0)
    except redis_py.ResponseError:
        return None


def used_memory(client: redis_py.Redis) -> int | None:
    """``used_memory`` from ``INFO memory``, or None where the server has no ``INFO``."""
    try:
        return int(client.info("memory")["used_memory"])
    except redis_py.ResponseError:
        return None


def stored_state(client: redis_py.Redis, key: str) -> tuple[str, int, int]:
    """``(Redis type, entries, payload bytes)`` of a limiter's key, on any Redis.

    Entries are a hash's fields, a list's or a sorted set's elements; the payload is the
    bytes of the strings stored (field names and values, members, and 8 bytes per score),
    the data before Redis's own bookkeeping.
    """
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "hash":
        fields = client.hgetall(key)
        return kind, len(fields), sum(len(f) + len(v) for f, v in fields.items())
    if kind == "list":
        items = client.lrange(key, 0, -1)
        return kind, len(items), sum(len(v) for v in items)
    if kind == "zset":
        items = client.zrange(key, 0, -1)
        return kind, len(items), sum(len(m) + 8 for m in items)
    raise ValueError(f"no limiter state at {key!r} (type {kind})")


@dataclass(frozen=True)
class StateMemory:
    """One limiter's key after ``limit`` admitted requests in one window."""

    algorithm: str
    redis_type: str
    numbers: int  # numbers the algorithm keeps: fields, queued departures, logged times
    payload_bytes: int  # the strings Redis stores for them
    memory_usage: int | None  # MEMORY USAGE: what Redis spends on the key (None: fakeredis)

    @property
    def theoretical_bytes(self) -> int:
        """8 bytes (one double) per number: the state with no overhead at all."""
        return 8 * self.numbers


#: Where :func:`state_memory` and friends put their requests: a Unix time (November 2023),
#: so that stored times have as many digits as a real clock's.
FILL_START = 1_700_000_000.0


def state_memory_table(rows: Sequence[StateMemory]) -> str:
    """What each key stores and what Redis spends on it ("needs redis-server" without
    MEMORY USAGE)."""
    header = f"{'algorithm':23}{'Redis type':>11}{'numbers':>9}{'8 B each':>10}"
    lines = [header + f"{'stored strings':>16}{'MEMORY USAGE':>20}"]
    for r in rows:
        measured = "needs redis-server" if r.memory_usage is None else f"{r.memory_usage} B"
        lines.append(
            f"{r.algorithm:23}{r.redis_type:>11}{r.numbers:>9}{r.theoretical_bytes:>8} B"
            f"{r.payload_bytes:>14} B{measured:>20}"
        )
    return "\n".join(lines)


def _fill(limiter, key: str, requests: int, window: float, start: float = FILL_START) -> None:
    """``requests`` admitted requests, all within ``window / (2 * requests)`` seconds: too
    soon for a leaking bucket of ``requests`` per window to drain any."""
    for i in range(requests):
        if not limiter.allow(key, start + i * window / (2 * requests * requests)):
            raise RuntimeError(f"{limiter!r} rejected request {i} of {requests}")


def state_memory(
    client: redis_py.Redis, *, limit: int = 10, window: float = 1.0, prefix: str = "memory"
) -> list[StateMemory]:
    """For each Redis limiter: one key that has admitted ``limit`` requests in one window
    (a client at its limit), what it stores and what Redis spends on it. Keys are deleted
    afterwards."""
    rows = []
    for name, limiter in redis_limiters_for(client, limit, window, prefix=prefix).items():
        key = limiter.redis_key("client")
        client.delete(key)
        _fill(limiter, "client", limit, window)
        kind, entries, payload = stored_state(client, key)
        rows.append(StateMemory(name, kind, entries, payload, memory_usage(client, key)))
        client.delete(key)
    return rows


def used_memory_per_key(
    client: redis_py.Redis,
    *,
    keys: int = 5000,
    limit: int = 10,
    window: float = 1.0,
    prefix: str = "manykeys",
) -> dict[str, float] | None:
    """Bytes of ``used_memory`` per key when ``keys`` clients each made one request:
    the key, its state, its expiry and its share of Redis's hash tables. None on a server
    without ``INFO`` (fakeredis). The keys are deleted afterwards."""
    _whole_number("keys", keys)
    if used_memory(client) is None:
        return None
    per_key = {}
    for name, limiter in redis_limiters_for(client, limit, window, prefix=prefix).items():
        limiter.allow("warm-up", FILL_START)  # load the script before measuring
        client.delete(limiter.redis_key("warm-up"))
        before = used_memory(client)
        for i in range(keys):
            limiter.allow(f"client-{i}", FILL_START)
        per_key[name] = (used_memory(client) - before) / keys
        client.delete(*(limiter.redis_key(f"client-{i}") for i in range(keys)))
    return per_key


def memory_by_limit(
    client: redis_py.Redis,
    limits: Sequence[int] = (1, 8, 32, 128, 129, 256, 1024),
    *,
    window: float = 1.0,
    prefix: str = "bylimit",
) -> dict[str, list[int | None]]:
    """``MEMORY USAGE`` of one full key for each ``limit``: the two limiters whose state
    grows with it (the sliding log keeps one sorted-set entry per admitted request, the
    leaking bucket one list element per queued request)."""

    def sliding_log(limit: int):
        return RedisSlidingWindowLog(client, limit=limit, window=window, prefix=prefix)

    def leaking_bucket(limit: int):
        return RedisLeakingBucket(client, capacity=limit, leak_rate=limit / window, prefix=prefix)

    result = {}
    for name, make in (("sliding window log", sliding_log), ("leaking bucket", leaking_bucket)):
        sizes = []
        for limit in limits:
            limiter = make(limit)
            key = limiter.redis_key("client")
            client.delete(key)
            _fill(limiter, "client", limit, window)
            sizes.append(memory_usage(client, key))
            client.delete(key)
        result[name] = sizes
    return result


def memory_by_limit_figure(limits: Sequence[int], sizes: dict[str, list[int | None]]) -> go.Figure:
    """Bytes per key against the limit, both on log scales, with "a hash of 3 numbers" for
    scale: the sliding window counter's state, whatever the limit."""
    data = [
        dict(type="scatter", x=list(limits), y=values, mode="lines+markers", name=name,
             line=dict(color=COLORS[1 if name == "leaking bucket" else 3]))
        for name, values in sizes.items()
    ]  # fmt: skip
    return new_figure(
        "Redis memory of one full key (MEMORY USAGE)",
        height=360,
        data=data,
        xaxis=dict(type="log", title="limit (capacity): entries in the key"),
        yaxis=dict(type="log", title="bytes per key"),
        legend=dict(x=0.01, y=0.99),
    )


# --- 4. decisions per second ----------------------------------------------------------


def decisions_per_second(
    allow: Callable[[str, float], object], trace: Sequence[tuple[float, str]]
) -> float:
    """Decisions per second of ``allow(key, now)`` over ``trace`` (wall clock)."""
    start = time.perf_counter()
    for now, key in trace:
        allow(key, now)
    return len(trace) / (time.perf_counter() - start)


def command_calls(client: redis_py.Redis, field: str = "calls") -> dict[str, int] | None:
    """Calls per command since the last ``CONFIG RESETSTAT``, from ``INFO commandstats``:
    the commands clients sent and the ones scripts ran (``field="usec"``: microseconds
    spent in each). None without ``INFO`` (fakeredis)."""
    try:
        stats = client.info("commandstats")
    except redis_py.ResponseError:
        return None
    return {name.removeprefix("cmdstat_"): int(entry[field]) for name, entry in stats.items()}


@dataclass(frozen=True)
class Throughput:
    """How fast one limiter decided, and, on a real Redis, what each decision cost it."""

    algorithm: str
    decisions_per_s: float
    scripts_per_decision: float | None = None  # EVALSHA/EVAL calls: the client's round trips
    commands_per_decision: float | None = None  # every command Redis ran, scripts' included
    server_us_per_decision: float | None = None  # Redis's own time running the script


def measure_throughput(
    limiters: dict[str, object],
    trace: Sequence[tuple[float, str]],
    client: redis_py.Redis | None = None,
) -> list[Throughput]:
    """Replay ``trace`` through each limiter (give each a fresh ``prefix`` or an empty
    Redis: earlier state changes decisions). With the ``client`` of a real Redis, also
    count the commands each decision cost, from ``INFO commandstats`` before and after
    (nothing is reset). A warm-up request first loads the Lua script."""
    results = []
    for name, limiter in limiters.items():
        if client is not None:
            limiter.allow("warm-up", trace[0][0])
            client.delete(limiter.redis_key("warm-up"))
        before = command_calls(client) if client is not None else None
        usec_before = command_calls(client, "usec") if before is not None else None
        rate = decisions_per_second(limiter.allow, trace)
        if before is None:
            results.append(Throughput(name, rate))
            continue
        after, usec_after = command_calls(client), command_calls(client, "usec")
        delta = {c: n - before.get(c, 0) for c, n in after.items() if c != "info"}
        scripts = delta.get("evalsha", 0) + delta.get("eval", 0)
        usec = sum(usec_after.get(c, 0) - usec_before.get(c, 0) for c in ("evalsha", "eval"))
        n = len(trace)
        results.append(Throughput(name, rate, scripts / n, sum(delta.values()) / n, usec / n))
    return results


def throughput_table(
    in_process: Sequence[Throughput],
    embedded: Sequence[Throughput],
    real: Sequence[Throughput] | None,
) -> str:
    """Decisions per second side by side; for the real server, what one decision costs it."""
    header = f"{'algorithm':23}{'in-process':>12}{'embedded':>10}{'real Redis':>12}"
    header += f"{'scripts':>9}{'commands':>10}{'Redis µs':>10}"
    groups = f"{'':23}{'decisions per second':^34}{'per decision, real Redis':^29}".rstrip()
    lines = [groups, header]
    for i, local in enumerate(in_process):
        row = f"{local.algorithm:23}{local.decisions_per_s:>12,.0f}"
        row += f"{embedded[i].decisions_per_s:>10,.0f}"
        if real is None:
            row += f"{'needs redis-server':>41}"
        else:
            r = real[i]
            row += (
                f"{r.decisions_per_s:>12,.0f}{r.scripts_per_decision:>9.2f}"
                f"{r.commands_per_decision:>10.2f}{r.server_us_per_decision:>10.1f}"
            )
        lines.append(row)
    return "\n".join(lines)
