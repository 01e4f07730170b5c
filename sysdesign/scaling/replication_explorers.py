"""Replication explorers (``repl-*``): closed forms drawn live, small seeded Monte Carlo
runs plotted on top of them.

- ``repl-stale-reads``: P(stale read) and P(read-your-writes violation) against the mean
  replication lag, for a routing policy;
- ``repl-quorum``: P(stale read) after a quorum write against time since the write, and
  read / write availability against the node failure probability;
- ``repl-failover``: how many acknowledged writes a failover loses with asynchronous
  replication.

The SimPy simulation (:func:`sysdesign.scaling.replication.simulate_leader_follower`) is
too slow for a slider (about a second a run); the explorers' Monte Carlo samples the same
model directly with numpy, and the notebook checks the SimPy runs against the same
closed forms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from sysdesign.explore import Choice, Slider, explorer
from sysdesign.figures import COLORS, new_figure
from sysdesign.scaling.replication import (
    expected_lost_writes,
    failover_losses,
    quorum_availability,
    quorum_stale_probability,
    read_your_writes_violation,
    stale_read_probability,
)

SEED = 7
TOP_LEGEND = dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom")


# --- repl-stale-reads -------------------------------------------------------------------


@dataclass(frozen=True)
class StaleReads:
    routing: str
    followers: int
    write_rate: float
    read_delay_ms: float
    sticky_window_ms: float
    lag_ms: np.ndarray  # the x axis of the theory curves
    stale_theory: np.ndarray
    ryw_theory: np.ndarray
    sample_lag_ms: np.ndarray  # where the Monte Carlo points are
    stale_sampled: np.ndarray
    ryw_sampled: np.ndarray

    def describe(self) -> str:
        return (
            f"{self.routing} routing, {self.followers} follower(s), {self.write_rate:g} "
            f"writes/s per key, own write read back after {self.read_delay_ms:g} ms: lines are "
            "the closed forms, dots a Monte Carlo run of the same model."
        )


def stale_reads(
    *,
    routing: str,
    followers: int,
    write_rate: float,
    read_delay_ms: float,
    sticky_window_ms: float,
    samples: int = 4000,
    seed: int = SEED,
) -> StaleReads:
    """Closed forms over a range of mean lags, and a Monte Carlo estimate at a few lags."""
    lag_ms = np.logspace(0, 4, 60)
    d, window = read_delay_ms / 1000, sticky_window_ms / 1000

    def theory(lag_s):
        return (
            stale_read_probability(
                write_rate=write_rate, mean_lag=lag_s, followers=followers, routing=routing
            ),
            read_your_writes_violation(
                read_delay=d,
                mean_lag=lag_s,
                followers=followers,
                routing=routing,
                sticky_window=window,
            ),
        )

    stale_t, ryw_t = np.array([theory(x / 1000) for x in lag_ms]).T
    sample_lag_ms = np.logspace(0, 4, 9)
    rng = np.random.default_rng(seed)
    lag = sample_lag_ms[:, None] / 1000
    shape = (len(sample_lag_ms), samples)
    # a background read: the latest write is Exp(1/w) old, its lag is Exp(L)
    age = rng.exponential(1 / write_rate, shape)
    missing = rng.exponential(1.0, shape) * lag > age
    node = rng.integers(0, followers + 1, shape)  # 0 is the leader
    on_follower = node > 0 if routing != "leader" else np.zeros(shape, bool)
    stale_s = (missing & on_follower).mean(axis=1)
    # reading one's own write d seconds later
    own_missing = rng.exponential(1.0, shape) * lag > d
    sticky_to_leader = routing == "sticky" and d < window
    own_follower = rng.integers(0, followers + 1, shape) > 0
    if routing == "leader" or sticky_to_leader:
        own_follower[:] = False
    ryw_s = (own_missing & own_follower).mean(axis=1)
    return StaleReads(
        routing, followers, write_rate, read_delay_ms, sticky_window_ms,
        lag_ms, stale_t, ryw_t, sample_lag_ms, stale_s, ryw_s,
    )  # fmt: skip


def stale_reads_figure(result: StaleReads) -> go.Figure:
    lines = [
        ("stale read (any key)", result.stale_theory, result.stale_sampled, COLORS[0]),
        ("read-your-writes violation", result.ryw_theory, result.ryw_sampled, COLORS[3]),
    ]
    data = []
    for name, theory, sampled, color in lines:
        data.append(
            dict(
                type="scatter",
                mode="lines",
                x=result.lag_ms,
                y=theory,
                name=f"{name}: theory",
                line=dict(color=color),
            )
        )
        data.append(
            dict(
                type="scatter",
                mode="markers",
                x=result.sample_lag_ms,
                y=sampled,
                name=f"{name}: Monte Carlo",
                marker=dict(color=color, size=8),
            )
        )
    return new_figure(
        data=data,
        height=380,
        xaxis=dict(type="log", title=dict(text="mean replication lag (ms)")),
        yaxis=dict(title=dict(text="probability"), range=[-0.02, 1.02]),
        legend=TOP_LEGEND,
        margin=dict(l=60, r=20, t=70, b=50),
    )  # fmt: skip


repl_stale_reads = explorer(
    "repl-stale-reads",
    stale_reads,
    stale_reads_figure,
    title="Stale reads and read-your-writes vs replication lag",
    describe=StaleReads.describe,
    routing=Choice("random", ["leader", "random", "sticky"], label="read routing"),
    followers=Slider(2, 1, 6, integer=True, label="followers"),
    write_rate=Slider(1.0, 0.01, 100, log=True, label="writes/s per key"),
    read_delay_ms=Slider(100, 1, 10_000, log=True, label="read own write after (ms)"),
    sticky_window_ms=Slider(1000, 0, 10_000, step=100, label="sticky window (ms)"),
)


# --- repl-quorum ------------------------------------------------------------------------

QUORUMS = {
    "N=3 R=1 W=1": (3, 1, 1),
    "N=3 R=2 W=2": (3, 2, 2),
    "N=3 R=1 W=3": (3, 1, 3),
    "N=5 R=1 W=1": (5, 1, 1),
    "N=5 R=1 W=2": (5, 1, 2),
    "N=5 R=2 W=2": (5, 2, 2),
    "N=5 R=3 W=3": (5, 3, 3),
    "N=9 R=1 W=3": (9, 1, 3),
    "N=9 R=5 W=5": (9, 5, 5),
}


@dataclass(frozen=True)
class QuorumView:
    quorum: str
    n: int
    r: int
    w: int
    mean_lag_ms: float
    t_ms: np.ndarray
    stale_theory: np.ndarray
    sample_t_ms: np.ndarray
    stale_sampled: np.ndarray
    failure: np.ndarray
    read_avail: np.ndarray
    write_avail: np.ndarray
    sample_failure: np.ndarray
    read_avail_sampled: np.ndarray
    write_avail_sampled: np.ndarray

    def describe(self) -> str:
        kind = "strict (R + W > N)" if self.r + self.w > self.n else "partial (R + W <= N)"
        return (
            f"{self.quorum}: {kind} quorum; right after a write a read is stale with "
            f"probability {self.stale_theory[0]:.3f}."
        )


def quorum_view(
    *, quorum: str, mean_lag_ms: float, trials: int = 3000, seed: int = SEED
) -> QuorumView:
    """P(stale) against time since the write (closed form + Monte Carlo) and availability
    against node failure probability (binomial tail + Monte Carlo)."""
    if quorum not in QUORUMS:
        raise ValueError(f"quorum must be one of {list(QUORUMS)}, got {quorum!r}")
    n, r, w = QUORUMS[quorum]
    lag = mean_lag_ms / 1000
    t_ms = np.linspace(0, 4 * mean_lag_ms, 41)
    stale_t = np.array([quorum_stale_probability(n, r, w, t=x / 1000, mean_lag=lag) for x in t_ms])
    sample_t_ms = t_ms[::5]
    rng = np.random.default_rng(seed)
    k = len(sample_t_ms)
    # W random replicas have the write at commit; the others get it after Exp(L).
    has = np.argsort(rng.random((k, trials, n)), axis=2) < w
    has |= rng.exponential(1.0, (k, trials, n)) * lag <= sample_t_ms[:, None, None] / 1000
    read_set = np.argsort(rng.random((k, trials, n)), axis=2) < r
    stale_s = 1 - (has & read_set).any(axis=2).mean(axis=1)
    failure = np.linspace(0, 0.5, 51)
    read_a = np.array([quorum_availability(n, r, f) for f in failure])
    write_a = np.array([quorum_availability(n, w, f) for f in failure])
    sample_failure = failure[::5]
    up = (rng.random((len(sample_failure), trials, n)) >= sample_failure[:, None, None]).sum(2)
    return QuorumView(
        quorum, n, r, w, mean_lag_ms, t_ms, stale_t, sample_t_ms, stale_s,
        failure, read_a, write_a, sample_failure,
        (up >= r).mean(axis=1), (up >= w).mean(axis=1),
    )  # fmt: skip


def quorum_figure(view: QuorumView) -> go.Figure:
    def pair(x, y, xs, ys, name, color, axis):
        return [
            dict(type="scatter", mode="lines", x=x, y=y, name=f"{name}: theory",
                 line=dict(color=color), xaxis=f"x{axis}", yaxis=f"y{axis}"),
            dict(type="scatter", mode="markers", x=xs, y=ys, name=f"{name}: Monte Carlo",
                 marker=dict(color=color, size=7), xaxis=f"x{axis}", yaxis=f"y{axis}"),
        ]  # fmt: skip

    data = [
        *pair(view.t_ms, view.stale_theory, view.sample_t_ms, view.stale_sampled,
              "stale read", COLORS[0], ""),
        *pair(view.failure, view.read_avail, view.sample_failure, view.read_avail_sampled,
              f"read (R={view.r})", COLORS[2], "2"),
        *pair(view.failure, view.write_avail, view.sample_failure, view.write_avail_sampled,
              f"write (W={view.w})", COLORS[3], "2"),
    ]  # fmt: skip
    return new_figure(
        data=data,
        height=400,
        xaxis=dict(domain=[0, 0.44], title=dict(text="time since the write was acknowledged (ms)")),
        yaxis=dict(title=dict(text="P(read misses the write)"), range=[-0.02, 1.02]),
        xaxis2=dict(domain=[0.56, 1], anchor="y2", title=dict(text="P(a node is down)")),
        yaxis2=dict(anchor="x2", title=dict(text="availability"), range=[-0.02, 1.02]),
        legend=TOP_LEGEND,
        margin=dict(l=60, r=20, t=90, b=50),
    )


repl_quorum = explorer(
    "repl-quorum",
    quorum_view,
    quorum_figure,
    title="Quorums: staleness after a write, availability as nodes fail",
    describe=QuorumView.describe,
    quorum=Choice("N=5 R=1 W=2", list(QUORUMS), label="N, R, W"),
    mean_lag_ms=Slider(50, 1, 1000, log=True, label="mean lag to the other replicas (ms)"),
)


# --- repl-failover ----------------------------------------------------------------------


@dataclass(frozen=True)
class FailoverView:
    write_rate: float
    mean_lag_ms: float
    followers: int
    crashes: int
    lost: np.ndarray  # 0, 1, 2, ... writes lost
    sampled: dict[str, np.ndarray]  # fraction of crashes losing that many, per promotion
    poisson: dict[str, np.ndarray]  # the Poisson pmf where there is a closed form
    means: dict[str, float]
    expected: dict[str, float]

    def describe(self) -> str:
        return (
            f"{self.write_rate:g} writes/s x {self.mean_lag_ms:g} ms lag: a failover loses "
            f"{self.means['random_follower']:.2f} writes on average promoting a random "
            f"follower (theory {self.expected['random_follower']:.2f}), "
            f"{self.means['best_follower']:.2f} promoting the most up-to-date one, "
            f"{self.means['merged']:.2f} if every follower's writes are merged "
            f"(theory {self.expected['merged']:.2f})."
        )


def _poisson_pmf(mean: float, ks: np.ndarray) -> np.ndarray:
    from math import lgamma

    if mean == 0:
        return (ks == 0).astype(float)
    logs = ks * np.log(mean) - mean - np.array([lgamma(k + 1) for k in ks])
    return np.exp(logs)


def failover_view(
    *, write_rate: float, mean_lag_ms: float, followers: int, seed: int = SEED
) -> FailoverView:
    """Lost writes per failover: Monte Carlo histogram and the Poisson closed form."""
    lag = mean_lag_ms / 1000
    mean = write_rate * lag
    crashes = int(min(2000, max(200, 100_000 / (15 * mean * followers + 1))))
    losses = failover_losses(
        write_rate=write_rate, mean_lag=lag, followers=followers, crashes=crashes, seed=seed
    )
    arrays = {
        "random_follower": losses.random_follower,
        "best_follower": losses.best_follower,
        "merged": losses.merged,
    }
    top = int(max(a.max() for a in arrays.values())) + 1
    lost = np.arange(top + 1)
    sampled = {
        k: np.bincount(a.astype(int), minlength=top + 1) / crashes for k, a in arrays.items()
    }
    expected = {
        "random_follower": expected_lost_writes(write_rate=write_rate, mean_lag=lag),
        "merged": expected_lost_writes(
            write_rate=write_rate, mean_lag=lag, followers=followers, promote="merge"
        ),
    }
    poisson = {k: _poisson_pmf(v, lost) for k, v in expected.items()}
    return FailoverView(
        write_rate, mean_lag_ms, followers, crashes, lost, sampled, poisson,
        losses.means(), expected,
    )  # fmt: skip


FAILOVER_LABELS = {
    "random_follower": ("promote a random follower", COLORS[3]),
    "best_follower": ("promote the most up-to-date follower", COLORS[1]),
    "merged": ("merge all followers", COLORS[2]),
}


def failover_figure(view: FailoverView) -> go.Figure:
    data = []
    for key, (name, color) in FAILOVER_LABELS.items():
        data.append(
            dict(
                type="scatter",
                mode="markers",
                x=view.lost,
                y=view.sampled[key],
                name=f"{name}: simulated",
                marker=dict(color=color, size=6),
            )
        )
        if key in view.poisson:
            data.append(
                dict(
                    type="scatter",
                    mode="lines",
                    x=view.lost,
                    y=view.poisson[key],
                    name=f"{name}: Poisson theory",
                    line=dict(color=color),
                )
            )
    return new_figure(
        data=data,
        height=380,
        xaxis=dict(title=dict(text="acknowledged writes lost in one failover")),
        yaxis=dict(title=dict(text="fraction of failovers")),
        legend=TOP_LEGEND,
        margin=dict(l=60, r=20, t=90, b=50),
    )  # fmt: skip


repl_failover = explorer(
    "repl-failover",
    failover_view,
    failover_figure,
    title="What a failover loses with asynchronous replication",
    describe=FailoverView.describe,
    write_rate=Slider(100, 1, 1000, log=True, label="writes/s (whole leader)"),
    mean_lag_ms=Slider(50, 1, 100, log=True, label="mean replication lag (ms)"),
    followers=Slider(2, 1, 5, integer=True, label="followers"),
)
