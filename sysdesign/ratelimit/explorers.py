"""The five rate limiters on one bursty trace: what each admits, and its state over time.

Every run replays request times through the package's own limiter (``allow(key, now)``),
so the admitted / rejected split is exactly what the tested classes decide. What the
figures add is each limiter's *state* between requests, worked out from its formula:

- token bucket: the tokens in the bucket, ``min(capacity, tokens + elapsed * rate)``;
- leaking bucket: the queue length, and when each request leaves (``departs_at``);
- fixed window: the count in each window, and the count in the last ``window`` seconds
  (which can reach twice the limit across a boundary);
- sliding window log: the log's length, i.e. the exact count in the last ``window`` s;
- sliding window counter: its estimate ``previous * (1 - elapsed) + current`` next to the
  exact count of the same requests.

Explorers (``ratelimit-*``): one per algorithm, and ``ratelimit-five-algorithms`` with
all five at comparable settings. Compute functions take the parameters and return a
:class:`LimiterRun` (or a :class:`Comparison`); figure functions only draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

from sysdesign.explore import Slider, explorer
from sysdesign.figures import COLORS, new_figure
from sysdesign.ratelimit.algorithms import (
    FixedWindow,
    LeakingBucket,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
    _positive_number,
)
from sysdesign.ratelimit.traces import bursty_times

DURATION = 30.0  # seconds of traffic in every explorer
BURST_SPREAD = 0.1  # the requests of one burst arrive within this many seconds
BIN = 0.25  # seconds per bar in the admitted / rejected panels
KEY = "client"
SEED = 4  # the default trace: 310 requests in 30 s, about the 10/s the limiters allow

TOP_LEGEND = dict(orientation="h", x=0, xanchor="left", y=1.01, yanchor="bottom")
ADMITTED_COLOR, REJECTED_COLOR, STATE_COLOR, LIMIT_COLOR = COLORS[2], COLORS[3], COLORS[0], "#444"


# --- the trace --------------------------------------------------------------------------


def bursty_trace(
    *, offered_rate: float, burst_size: int, seed: int, duration: float = DURATION
) -> np.ndarray:
    """One client's request times: bursts of ``burst_size`` requests (within 0.1 s each),
    the bursts arriving at random, ``offered_rate`` requests a second on average.

    ``burst_size=1`` is plain random (Poisson) traffic; a larger burst size keeps the
    average and makes the traffic burstier.
    """
    _positive_number("offered_rate", offered_rate)
    times = bursty_times(
        duration=duration,
        burst_size=burst_size,
        bursts_per_second=offered_rate / burst_size,
        burst_spread=BURST_SPREAD,
        seed=seed,
    )
    return np.asarray(times, dtype=float)


def _check_times(times, duration: float) -> np.ndarray:
    _positive_number("duration", duration)
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or (times.size and (times[0] < 0 or times[-1] >= duration)):
        raise ValueError(f"times must be a flat list of seconds in [0, duration={duration:g})")
    if np.any(np.diff(times) < 0):
        raise ValueError("times must be sorted (a limiter's clock never goes backwards)")
    return times


def max_in_span(times, span: float) -> int:
    """The most ``times`` that fall in any half-open interval ``[t, t + span)``.

    Times ``span`` apart up to a rounding error (e.g. ten steps of 0.1 s) count as
    ``span`` apart: they are never both in one interval.
    """
    times = np.sort(np.asarray(times, dtype=float))
    if times.size == 0:
        return 0
    ends = times + span * (1 - 1e-9)
    return int((np.searchsorted(times, ends, side="left") - np.arange(times.size)).max())


def count_in_last(times, window: float, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """The step function "how many of ``times`` fell in ``(t - window, t]``" on [0, duration].

    Returned as the points where it changes (draw with ``line_shape="hv"``): a time counts
    from the instant it happens until exactly ``window`` seconds later.
    """
    times = np.asarray(times, dtype=float)
    when = np.concatenate([times + window, times])  # leaving first when both at one instant
    change = np.concatenate([-np.ones(times.size), np.ones(times.size)])
    order = np.argsort(when, kind="stable")
    when, level = when[order], np.cumsum(change[order])
    keep = when <= duration
    x = np.concatenate([[0.0], when[keep], [duration]])
    y = np.concatenate([[0.0], level[keep], [level[keep][-1] if keep.any() else 0.0]])
    return x, y


# --- one run of one limiter ---------------------------------------------------------------


@dataclass
class LimiterRun:
    """One limiter's decisions on one trace, and its state over time.

    ``curves`` maps a name ("tokens", "queue length", ...) to ``(times, values)``: points of
    the state over ``[0, duration]``. ``departures`` (leaking bucket only) says when each
    admitted request leaves the queue (``nan`` for a rejected one).
    """

    algorithm: str
    settings: str
    times: np.ndarray
    admitted: np.ndarray
    duration: float
    span: float  # the limiter's own time scale: the window, or capacity / rate
    bound: float  # the most requests it can let through in any `span` seconds (inf: none)
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    departures: np.ndarray | None = None
    limit: float = 0.0  # the horizontal line drawn with the state (capacity or limit)
    state_label: str = ""
    state_per_key: int = 0  # the most numbers the limiter held for the key at once
    disagreements: int | None = None  # counter only: decided unlike an exact sliding log
    note: str = ""

    @property
    def admitted_times(self) -> np.ndarray:
        return self.times[self.admitted]

    @property
    def rejected_times(self) -> np.ndarray:
        return self.times[~self.admitted]

    @property
    def sent_on_times(self) -> np.ndarray:
        """When admitted requests reach the service: at once, or when they leave the queue."""
        if self.departures is None:
            return self.admitted_times
        return np.sort(self.departures[self.admitted])

    def binned(self, bin_width: float = BIN) -> dict[str, np.ndarray]:
        """Admitted, rejected and sent-on counts per ``bin_width`` seconds, and bin centres."""
        bins = max(1, math.ceil(self.duration / bin_width - 1e-9))

        def count(times):
            index = np.minimum((times / bin_width).astype(int), bins - 1)
            return np.bincount(index, minlength=bins)

        return {
            "centre": (np.arange(bins) + 0.5) * bin_width,
            "admitted": count(self.admitted_times),
            "rejected": count(self.rejected_times),
            "sent_on": count(self.sent_on_times[self.sent_on_times < self.duration]),
        }

    def describe(self) -> str:
        n, a = self.times.size, int(self.admitted.sum())
        share = a / n if n else 0.0
        text = (
            f"{self.algorithm} ({self.settings}): admitted <b>{a}</b> of {n} requests "
            f"({share:.0%}); at most <b>{max_in_span(self.admitted_times, self.span)}</b> "
            f"admitted in any {self.span:g} s"
        )
        if math.isfinite(self.bound):
            text += f" (bound {self.bound:g})"
        return text + (f"; {self.note}" if self.note else "") + "."


def _decide_all(limiter, times: np.ndarray) -> list:
    allow = limiter.allow
    return [allow(KEY, t) for t in times.tolist()]


def token_bucket_run(
    times, *, capacity: int, refill_rate: float, duration: float = DURATION
) -> LimiterRun:
    """A :class:`TokenBucket` on ``times``; the "tokens" curve is exact (a polyline).

    Between admissions the bucket refills in a straight line until it is full, then stays
    full; each admission drops it by one token.
    """
    times = _check_times(times, duration)
    decisions = _decide_all(TokenBucket(capacity=capacity, refill_rate=refill_rate), times)
    admitted = np.array([d.admitted for d in decisions], dtype=bool)
    xs, ys = [0.0], [float(capacity)]
    tokens, last = float(capacity), 0.0

    def refill_to(t):
        nonlocal tokens, last
        if t == last:
            return
        full_at = last + (capacity - tokens) / refill_rate
        if tokens < capacity and full_at < t:
            xs.append(full_at)
            ys.append(float(capacity))
        tokens, last = min(capacity, tokens + (t - last) * refill_rate), t
        xs.append(t)
        ys.append(tokens)

    for t in times[admitted].tolist():
        refill_to(t)
        tokens -= 1
        xs.append(t)
        ys.append(tokens)
    refill_to(duration)
    return LimiterRun(
        "token bucket",
        f"capacity {capacity}, refill {refill_rate:g}/s",
        times,
        admitted,
        duration,
        span=1.0,
        bound=capacity + refill_rate * 1.0,
        curves={"tokens": (np.array(xs), np.array(ys))},
        limit=capacity,
        state_label="tokens",
        state_per_key=2,
    )


def leaking_bucket_run(
    times, *, capacity: int, leak_rate: float, duration: float = DURATION
) -> LimiterRun:
    """A :class:`LeakingBucket` on ``times``: decisions, departures and the queue length."""
    times = _check_times(times, duration)
    decisions = _decide_all(LeakingBucket(capacity=capacity, leak_rate=leak_rate), times)
    admitted = np.array([d.admitted for d in decisions], dtype=bool)
    departures = np.array([d.departs_at if d.admitted else np.nan for d in decisions], dtype=float)
    arrive, leave = times[admitted], departures[admitted]
    when = np.concatenate([leave, arrive])  # at one instant, departures go first
    change = np.concatenate([-np.ones(leave.size), np.ones(arrive.size)])
    order = np.argsort(when, kind="stable")
    when, queue = when[order], np.cumsum(change[order])
    keep = when <= duration
    x = np.concatenate([[0.0], when[keep], [duration]])
    y = np.concatenate([[0.0], queue[keep], [queue[keep][-1] if keep.any() else 0.0]])
    waits = leave - arrive
    return LimiterRun(
        "leaking bucket",
        f"capacity {capacity}, leak {leak_rate:g}/s",
        times,
        admitted,
        duration,
        span=1.0,
        bound=capacity + leak_rate * 1.0,
        curves={"queue length": (x, y)},
        departures=departures,
        limit=capacity,
        state_label="queue length",
        state_per_key=int(y.max()),
        note=(
            f"sent on at most <b>{max_in_span(leave, 1.0)}</b> in any 1 s; "
            f"delay mean {waits.mean() if waits.size else 0:.2f} s, "
            f"max {waits.max() if waits.size else 0:.2f} s (bound {capacity / leak_rate:.2g} s)"
        ),
    )


def fixed_window_run(times, *, limit: int, window: float, duration: float = DURATION) -> LimiterRun:
    """A :class:`FixedWindow` on ``times``: the count in each window, and the count in the
    last ``window`` seconds, which a boundary lets reach ``2 * limit``."""
    times = _check_times(times, duration)
    decisions = _decide_all(FixedWindow(limit=limit, window=window), times)
    admitted = np.array([d.admitted for d in decisions], dtype=bool)
    windows = math.ceil(duration / window)
    index = np.floor(times[admitted] / window).astype(int)
    per_window = np.bincount(index, minlength=windows)[:windows]
    return LimiterRun(
        "fixed window",
        f"limit {limit} per {window:g} s",
        times,
        admitted,
        duration,
        span=window,
        bound=2 * limit,
        curves={
            "count in the window": (np.arange(windows) * window, per_window.astype(float)),
            f"admitted in the last {window:g} s": count_in_last(times[admitted], window, duration),
        },
        limit=limit,
        state_label="requests",
        state_per_key=2,
    )


def sliding_window_log_run(
    times, *, limit: int, window: float, duration: float = DURATION
) -> LimiterRun:
    """A :class:`SlidingWindowLog` on ``times``; its log's length over time (the exact
    count in the last ``window`` seconds), never above ``limit``."""
    times = _check_times(times, duration)
    decisions = _decide_all(SlidingWindowLog(limit=limit, window=window), times)
    admitted = np.array([d.admitted for d in decisions], dtype=bool)
    x, y = count_in_last(times[admitted], window, duration)
    return LimiterRun(
        "sliding window log",
        f"limit {limit} per {window:g} s",
        times,
        admitted,
        duration,
        span=window,
        bound=limit,
        curves={"timestamps in the log": (x, y)},
        limit=limit,
        state_label="requests",
        state_per_key=int(y.max()),
    )


def counter_estimate(admitted_times, window: float, at) -> np.ndarray:
    """The sliding window counter's estimate at times ``at`` from the admitted times:
    ``previous * (1 - elapsed / window) + current`` with fixed windows ``[k*window, ...)``."""
    admitted_times = np.asarray(admitted_times, dtype=float)
    at = np.asarray(at, dtype=float)
    index = np.floor(at / window)
    start = index * window
    first = np.searchsorted(admitted_times, start - window, side="left")
    middle = np.searchsorted(admitted_times, start, side="left")
    last = np.searchsorted(admitted_times, at, side="right")
    elapsed = at / window - index
    return (middle - first) * (1 - elapsed) + (last - middle)


def sliding_window_counter_run(
    times, *, limit: int, window: float, duration: float = DURATION
) -> LimiterRun:
    """A :class:`SlidingWindowCounter` on ``times``: its estimate next to the exact count of
    the same admitted requests in the last ``window`` seconds, and how many requests it
    decided differently from an exact :class:`SlidingWindowLog` of the same limit."""
    times = _check_times(times, duration)
    decisions = _decide_all(SlidingWindowCounter(limit=limit, window=window), times)
    admitted = np.array([d.admitted for d in decisions], dtype=bool)
    exact = _decide_all(SlidingWindowLog(limit=limit, window=window), times)
    differ = int(sum(d.admitted != e.admitted for d, e in zip(decisions, exact, strict=True)))
    kept = times[admitted]
    # The estimate is a straight line between window boundaries and admissions, and jumps
    # at each: evaluate it just before and at each of those instants.
    breaks = np.union1d(np.arange(math.ceil(duration / window) + 1) * window, kept)
    breaks = breaks[breaks <= duration]
    before = np.maximum(breaks - window * 1e-9, 0.0)
    at = np.column_stack([before, breaks]).ravel()
    return LimiterRun(
        "sliding window counter",
        f"limit {limit} per {window:g} s",
        times,
        admitted,
        duration,
        span=window,
        bound=math.inf,
        curves={
            "estimate": (at, counter_estimate(kept, window, at)),
            f"exact count in the last {window:g} s": count_in_last(kept, window, duration),
        },
        limit=limit,
        state_label="requests",
        state_per_key=3,
        disagreements=differ,
        note=(
            f"decided <b>{differ}</b> of {times.size} requests differently from an exact "
            f"sliding log ({differ / max(times.size, 1):.1%})"
        ),
    )


# --- figures ------------------------------------------------------------------------------


def _rows_layout(rows: int, titles: list[str], gap: float = 0.06, first: float | None = None):
    """Layout for ``rows`` panels stacked with one shared time axis (made by hand: one
    constructor call is much faster than ``make_subplots``)."""
    if first is None:
        heights = [1 / rows] * rows
    else:
        heights = [first] + [(1 - first) / (rows - 1)] * (rows - 1)
    layout, top = {}, 1.0
    for i, (height, title) in enumerate(zip(heights, titles, strict=True), start=1):
        suffix = "" if i == 1 else str(i)
        bottom = max(0.0, top - height + (gap if i < rows else 0))
        layout[f"yaxis{suffix}"] = dict(
            domain=[bottom, top], title=dict(text=title), rangemode="tozero"
        )
        if i == rows:
            layout[f"xaxis{suffix}"] = dict(anchor=f"y{suffix}", title=dict(text="time (s)"))
        else:
            layout[f"xaxis{suffix}"] = dict(
                anchor=f"y{suffix}", matches=f"x{rows}", showticklabels=False
            )
        top -= height
    return layout


def _decision_bars(
    run: LimiterRun, axis: str = "", legend: bool = True, sent_on: bool = False
) -> list:
    binned = run.binned()
    x = binned["centre"]
    common = dict(type="bar", x=x, width=BIN, xaxis=f"x{axis}", yaxis=f"y{axis}")
    traces = [
        dict(
            common, y=binned["admitted"], name="admitted", marker=dict(color=ADMITTED_COLOR),
            legendgroup="admitted", showlegend=legend,
        ),
        dict(
            common, y=binned["rejected"], name="rejected", marker=dict(color=REJECTED_COLOR),
            legendgroup="rejected", showlegend=legend,
        ),
    ]  # fmt: skip
    if sent_on:
        traces.append(
            dict(
                type="scatter", x=x, y=binned["sent_on"], mode="lines", line_shape="hvh",
                name="sent on (leaves the queue)", line=dict(color="black", width=2),
                xaxis=f"x{axis}", yaxis=f"y{axis}",
            )
        )  # fmt: skip
    return traces


def _limit_line(run: LimiterRun, name: str, axis: str = "2") -> dict:
    return dict(
        type="scatter", x=[0, run.duration], y=[run.limit, run.limit], mode="lines",
        name=name, line=dict(color=LIMIT_COLOR, dash="dash", width=1),
        xaxis=f"x{axis}", yaxis=f"y{axis}",
    )  # fmt: skip


def _line(x, y, name: str, color: str, shape: str = "hv", axis: str = "2", **extra) -> dict:
    return dict(
        type="scatter", x=x, y=y, mode="lines", line_shape=shape, name=name,
        line=dict(color=color, width=1.5), xaxis=f"x{axis}", yaxis=f"y{axis}", **extra,
    )  # fmt: skip


def _two_panel_figure(run: LimiterRun, state: list[dict], sent_on: bool = False) -> go.Figure:
    layout = _rows_layout(2, [f"requests per {BIN:g} s", run.state_label], first=0.5)
    return new_figure(
        f"{run.algorithm}: {run.settings}",
        height=460,
        data=_decision_bars(run, sent_on=sent_on) + state,
        barmode="stack",
        bargap=0,
        legend=TOP_LEGEND,
        margin=dict(l=60, r=20, t=80, b=45),
        **layout,
    )


def token_bucket_figure(run: LimiterRun) -> go.Figure:
    x, y = run.curves["tokens"]
    state = [_line(x, y, "tokens", STATE_COLOR, shape="linear"), _limit_line(run, "capacity")]
    return _two_panel_figure(run, state)


def leaking_bucket_figure(run: LimiterRun) -> go.Figure:
    x, y = run.curves["queue length"]
    state = [_line(x, y, "queue length", STATE_COLOR), _limit_line(run, "capacity")]
    return _two_panel_figure(run, state, sent_on=True)


def fixed_window_figure(run: LimiterRun) -> go.Figure:
    (starts, counts), (x, y) = run.curves.values()
    width = run.span
    state = [
        dict(
            type="bar", x=starts + width / 2, y=counts, width=width * 0.9,
            name="count in its window", marker=dict(color="#aec7e8"), xaxis="x2", yaxis="y2",
        ),
        _line(x, y, f"admitted in the last {width:g} s", STATE_COLOR),
        _limit_line(run, "limit"),
    ]  # fmt: skip
    return _two_panel_figure(run, state)


def sliding_window_log_figure(run: LimiterRun) -> go.Figure:
    x, y = run.curves["timestamps in the log"]
    state = [_line(x, y, "timestamps in the log", STATE_COLOR), _limit_line(run, "limit")]
    return _two_panel_figure(run, state)


def sliding_window_counter_figure(run: LimiterRun) -> go.Figure:
    (ex, ey), (cx, cy) = run.curves.values()
    state = [
        _line(cx, cy, f"exact count in the last {run.span:g} s", "#999"),
        _line(ex, ey, "estimate", STATE_COLOR, shape="linear"),
        _limit_line(run, "limit"),
    ]
    return _two_panel_figure(run, state)


# --- all five at comparable settings ------------------------------------------------------


@dataclass
class Comparison:
    """The five limiters on one trace, all allowing ``rate`` requests a second on average
    and bursts of ``burst``: buckets of capacity ``burst`` filled / drained at ``rate``,
    windows of ``burst / rate`` seconds holding ``burst`` requests."""

    rate: float
    burst: int
    offered_rate: float
    burst_size: int
    seed: int
    runs: list[LimiterRun]

    def table(self) -> list[dict]:
        """One row per limiter: what it admitted, how bunched, what it delayed, its state."""
        rows = []
        for run in self.runs:
            waits = (run.departures - run.times)[run.admitted] if run.departures is not None else []
            rows.append(
                {
                    "algorithm": run.algorithm,
                    "admitted": int(run.admitted.sum()),
                    "rejected": int((~run.admitted).sum()),
                    "max admitted in 1 s": max_in_span(run.admitted_times, 1.0),
                    "max sent on in 1 s": max_in_span(run.sent_on_times, 1.0),
                    "max delay (s)": round(float(np.max(waits)), 3) if len(waits) else 0.0,
                    "numbers held per key (max)": run.state_per_key,
                }
            )
        return rows

    def markdown(self) -> str:
        rows = self.table()
        header = list(rows[0])
        lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
        lines += ["| " + " | ".join(str(row[k]) for k in header) + " |" for row in rows]
        return "\n".join(lines) + "\n"

    def describe(self) -> str:
        n = self.runs[0].times.size
        return (
            f"{n} requests in {DURATION:g} s ({n / DURATION:.1f}/s offered, in bursts of "
            f"{self.burst_size}); every limiter allows {self.rate:g}/s with bursts of "
            f"{self.burst}. Admitted: "
            + ", ".join(f"{r.algorithm} {int(r.admitted.sum())}" for r in self.runs)
            + "."
        )


def compare_limiters(
    *, rate: float = 10.0, burst: int = 10, offered_rate: float = 10.0, burst_size: int = 10,
    seed: int = SEED,
) -> Comparison:  # fmt: skip
    """Run all five limiters at comparable settings on one seeded bursty trace."""
    times = bursty_trace(offered_rate=offered_rate, burst_size=burst_size, seed=seed)
    window = burst / rate
    runs = [
        token_bucket_run(times, capacity=burst, refill_rate=rate),
        leaking_bucket_run(times, capacity=burst, leak_rate=rate),
        fixed_window_run(times, limit=burst, window=window),
        sliding_window_log_run(times, limit=burst, window=window),
        sliding_window_counter_run(times, limit=burst, window=window),
    ]
    return Comparison(rate, burst, offered_rate, burst_size, seed, runs)


def comparison_figure(comparison: Comparison) -> go.Figure:
    """One row per limiter: admitted and rejected requests per 0.25 s on the same trace;
    for the leaking bucket also when requests leave its queue."""
    runs = comparison.runs
    data = []
    for i, run in enumerate(runs, start=1):
        axis = "" if i == 1 else str(i)
        data += _decision_bars(run, axis, legend=i == 1, sent_on=run.departures is not None)
    layout = _rows_layout(len(runs), [run.algorithm.replace(" ", "<br>", 1) for run in runs])
    return new_figure(
        f"Five limiters, one trace: {comparison.rate:g}/s, bursts of {comparison.burst}",
        height=720,
        data=data,
        barmode="stack",
        bargap=0,
        legend=TOP_LEGEND,
        margin=dict(l=90, r=20, t=80, b=45),
        **layout,
    )


# --- the explorers --------------------------------------------------------------------------

TRACE_PARAMS = dict(
    offered_rate=Slider(10.0, 1.0, 40.0, step=1.0, label="offered requests/s (average)"),
    burst_size=Slider(10, 1, 40, integer=True, label="requests per burst (1 = no bursts)"),
    seed=Slider(SEED, 0, 20, integer=True, label="trace seed"),
)


def explore_token_bucket(*, capacity, refill_rate, offered_rate, burst_size, seed) -> LimiterRun:
    times = bursty_trace(offered_rate=offered_rate, burst_size=burst_size, seed=seed)
    return token_bucket_run(times, capacity=capacity, refill_rate=refill_rate)


def explore_leaking_bucket(*, capacity, leak_rate, offered_rate, burst_size, seed) -> LimiterRun:
    times = bursty_trace(offered_rate=offered_rate, burst_size=burst_size, seed=seed)
    return leaking_bucket_run(times, capacity=capacity, leak_rate=leak_rate)


def explore_fixed_window(*, limit, window, offered_rate, burst_size, seed) -> LimiterRun:
    times = bursty_trace(offered_rate=offered_rate, burst_size=burst_size, seed=seed)
    return fixed_window_run(times, limit=limit, window=window)


def explore_sliding_window_log(*, limit, window, offered_rate, burst_size, seed) -> LimiterRun:
    times = bursty_trace(offered_rate=offered_rate, burst_size=burst_size, seed=seed)
    return sliding_window_log_run(times, limit=limit, window=window)


def explore_sliding_window_counter(*, limit, window, offered_rate, burst_size, seed):
    times = bursty_trace(offered_rate=offered_rate, burst_size=burst_size, seed=seed)
    return sliding_window_counter_run(times, limit=limit, window=window)


five_algorithms = explorer(
    "ratelimit-five-algorithms", compare_limiters, comparison_figure,
    title="Five rate limiters on one bursty trace",
    describe=Comparison.describe,
    rate=Slider(10.0, 1.0, 40.0, step=1.0, label="allowed requests/s"),
    burst=Slider(10, 1, 40, integer=True, label="allowed burst"),
    **TRACE_PARAMS,
)  # fmt: skip

token_bucket = explorer(
    "ratelimit-token-bucket", explore_token_bucket, token_bucket_figure,
    title="Token bucket", describe=LimiterRun.describe,
    capacity=Slider(10, 1, 40, integer=True, label="capacity (tokens)"),
    refill_rate=Slider(10.0, 1.0, 40.0, step=1.0, label="refill rate (tokens/s)"),
    **TRACE_PARAMS,
)  # fmt: skip

leaking_bucket = explorer(
    "ratelimit-leaking-bucket", explore_leaking_bucket, leaking_bucket_figure,
    title="Leaking bucket", describe=LimiterRun.describe,
    capacity=Slider(10, 1, 40, integer=True, label="capacity (queue length)"),
    leak_rate=Slider(10.0, 1.0, 40.0, step=1.0, label="leak rate (requests/s)"),
    **TRACE_PARAMS,
)  # fmt: skip

fixed_window = explorer(
    "ratelimit-fixed-window", explore_fixed_window, fixed_window_figure,
    title="Fixed window counter", describe=LimiterRun.describe,
    limit=Slider(10, 1, 40, integer=True, label="limit (requests per window)"),
    window=Slider(1.0, 0.25, 5.0, step=0.25, label="window (s)"),
    **TRACE_PARAMS,
)  # fmt: skip

sliding_window_log = explorer(
    "ratelimit-sliding-window-log", explore_sliding_window_log, sliding_window_log_figure,
    title="Sliding window log", describe=LimiterRun.describe,
    limit=Slider(10, 1, 40, integer=True, label="limit (requests per window)"),
    window=Slider(1.0, 0.25, 5.0, step=0.25, label="window (s)"),
    **TRACE_PARAMS,
)  # fmt: skip

sliding_window_counter = explorer(
    "ratelimit-sliding-window-counter", explore_sliding_window_counter,
    sliding_window_counter_figure,
    title="Sliding window counter", describe=LimiterRun.describe,
    limit=Slider(10, 1, 40, integer=True, label="limit (requests per window)"),
    window=Slider(1.0, 0.25, 5.0, step=0.25, label="window (s)"),
    **TRACE_PARAMS,
)  # fmt: skip

EXPLORERS = [
    five_algorithms,
    token_bucket,
    leaking_bucket,
    fixed_window,
    sliding_window_log,
    sliding_window_counter,
]
