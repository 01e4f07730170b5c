"""Caching explorers: hit ratio against cache size, and a CDN's offload and latency.

- ``cache-hit-ratio``: one policy replayed on a seeded Zipf trace at several cache sizes
  (markers) over the closed forms of all of them (lines): Che's approximation for LRU,
  the FIFO approximation, and top-C popularity, the IRM optimum that perfect LFU reaches.
- ``cache-cdn``: LRU edge caches in three regions in front of an origin; the share of
  requests the edges serve (origin offload) and the mean latency, predicted by Che for
  every edge size, with the simulated edges at the chosen size.

Traces are short (4,000 requests) so that one slider move stays under 100 ms; the
notebook and the tests use longer ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from sysdesign.explore import Choice, Slider, explorer
from sysdesign.figures import COLORS, new_figure
from sysdesign.scaling.caching import (
    POLICIES,
    THEORY_NAMES,
    CDNResult,
    HitRatioCurve,
    cdn,
    cdn_latency_ms,
    hit_ratio_curves,
    theory_curve,
)
from sysdesign.theory import zipf_popularity

EXPLORER_REQUESTS = 4_000
EXPLORER_WARMUP = 1_000
THEORY_LINES = ("LRU", "FIFO", "LFU")  # perfect LFU shares the LFU line (top-C)
LINE_COLORS = {"LRU": COLORS[0], "FIFO": COLORS[1], "LFU": COLORS[2], "perfect LFU": COLORS[2]}
TOP_LEGEND = dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom")


def cache_sizes(n_items: int, points: int) -> list[int]:
    """``points`` log-spaced cache sizes from 1% to half of the catalog."""
    return sorted({int(s) for s in np.geomspace(n_items / 100, n_items / 2, points).round()})


@dataclass
class HitRatioView:
    alpha: float
    n_items: int
    simulated: HitRatioCurve
    theory: dict[str, tuple[np.ndarray, np.ndarray]]  # policy -> (sizes, hit ratios)


def hit_ratio_view(
    *, alpha: float, policy: str, n_items: int = 1000, seed: int = 1
) -> HitRatioView:
    """Simulate ``policy`` at 5 sizes on a 4,000-request trace; every closed form as a line."""
    curve = hit_ratio_curves(
        n_items=n_items,
        alpha=alpha,
        sizes=cache_sizes(n_items, 5),
        n_requests=EXPLORER_REQUESTS,
        warmup=EXPLORER_WARMUP,
        policies=[policy],
        seed=seed,
    )[policy]
    p = zipf_popularity(n_items, alpha)
    theory = {
        name: theory_curve(name, p, n_items / 100, n_items / 2, points=20) for name in THEORY_LINES
    }
    return HitRatioView(alpha, n_items, curve, theory)


def hit_ratio_figure(view: HitRatioView) -> go.Figure:
    data = [
        dict(
            type="scatter", mode="lines", x=view.theory[name][0], y=view.theory[name][1],
            name=THEORY_NAMES[name], line=dict(color=LINE_COLORS[name], width=2),
        )
        for name in THEORY_LINES
    ]  # fmt: skip
    curve = view.simulated
    data.append(
        dict(
            type="scatter", mode="markers", x=curve.sizes, y=curve.simulated,
            name=f"{curve.policy}, simulated", marker=dict(
                color=LINE_COLORS[curve.policy], size=10, symbol="circle-open",
                line=dict(width=2),
            ),
        )
    )  # fmt: skip
    return new_figure(
        f"Hit ratio vs cache size: Zipf alpha {view.alpha:g}, {view.n_items:,} items",
        data=data,
        xaxis=dict(title="cache size (items)", type="log"),
        yaxis=dict(title="hit ratio", range=[0, 1]),
        legend=TOP_LEGEND,
        margin=dict(l=60, r=20, t=90, b=50),
    )


def describe_hit_ratio(view: HitRatioView) -> str:
    curve = view.simulated
    return (
        f"{curve.policy}: simulated {curve.simulated[-1]:.1%} at {curve.sizes[-1]:,} items vs "
        f"{curve.predicted[-1]:.1%} predicted; largest gap {curve.largest_gap * 100:.1f} points "
        f"(a 4,000-request trace)."
    )


hit_ratio = explorer(
    "cache-hit-ratio",
    hit_ratio_view,
    hit_ratio_figure,
    title="Eviction policies against theory",
    describe=describe_hit_ratio,
    alpha=Slider(0.8, 0.4, 1.4, step=0.05, label="Zipf alpha (skew)"),
    policy=Choice("LRU", POLICIES, label="simulated policy"),
)


@dataclass
class CDNView:
    edge_sizes: np.ndarray
    predicted_offload: np.ndarray
    predicted_latency: np.ndarray
    simulated: CDNResult  # at the chosen edge size
    edge_rtt_ms: float
    origin_rtt_ms: float


CDN_ITEMS = 10_000
CDN_EDGE_SIZES = (10, 5000)  # the range of the lines


def cdn_view(*, edge_size: float, alpha: float, origin_rtt_ms: float) -> CDNView:
    edge_rtt = 20.0
    p = zipf_popularity(CDN_ITEMS, alpha)
    sizes, offload = theory_curve("LRU", p, CDN_EDGE_SIZES[0], CDN_EDGE_SIZES[-1], points=15)
    latency = cdn_latency_ms(offload, edge_rtt, origin_rtt_ms)
    simulated = cdn(
        edge_size=max(1, round(edge_size)), alpha=alpha, n_items=CDN_ITEMS, regions=3,
        requests_per_region=2_500, edge_rtt_ms=edge_rtt, origin_rtt_ms=origin_rtt_ms,
    )  # fmt: skip
    return CDNView(sizes, offload, latency, simulated, edge_rtt, origin_rtt_ms)


def cdn_figure(view: CDNView) -> go.Figure:
    sim = view.simulated
    axes = dict(type="log", title="edge cache size (objects)")
    data = [
        dict(type="scatter", mode="lines", x=view.edge_sizes, y=view.predicted_offload,
             name="Che's approximation", line=dict(color=COLORS[0])),
        dict(type="scatter", mode="markers", x=[sim.edge_size] * len(sim.per_region_offload),
             y=sim.per_region_offload, name="simulated edges (3 regions)",
             marker=dict(color=COLORS[3], size=9, symbol="circle-open", line=dict(width=2))),
        dict(type="scatter", mode="lines", x=view.edge_sizes, y=view.predicted_latency,
             xaxis="x2", yaxis="y2", showlegend=False, line=dict(color=COLORS[0])),
        dict(type="scatter", mode="markers", x=[sim.edge_size], y=[sim.mean_latency_ms],
             xaxis="x2", yaxis="y2", showlegend=False,
             marker=dict(color=COLORS[3], size=9, symbol="circle-open", line=dict(width=2))),
    ]  # fmt: skip
    return new_figure(
        f"CDN: Zipf alpha {sim.alpha:g}, {CDN_ITEMS:,} objects",
        data=data,
        xaxis=dict(domain=[0, 0.45], **axes),
        yaxis=dict(title="origin offload (edge hit ratio)", range=[0, 1]),
        xaxis2=dict(domain=[0.57, 1], anchor="y2", **axes),
        yaxis2=dict(
            title="mean latency (ms)", anchor="x2",
            range=[0, view.edge_rtt_ms + view.origin_rtt_ms + 10],
        ),
        legend=TOP_LEGEND,
        margin=dict(l=60, r=20, t=90, b=50),
    )  # fmt: skip


def describe_cdn(view: CDNView) -> str:
    sim = view.simulated
    return (
        f"{sim.edge_size} objects per edge: the edges serve {sim.offload:.1%} of requests "
        f"(Che: {sim.predicted_offload:.1%}), mean latency {sim.mean_latency_ms:.0f} ms "
        f"(edge {view.edge_rtt_ms:.0f} ms, origin +{view.origin_rtt_ms:.0f} ms)."
    )


cdn_explorer = explorer(
    "cache-cdn",
    cdn_view,
    cdn_figure,
    title="A CDN: edge size and popularity skew",
    describe=describe_cdn,
    edge_size=Slider(100, 10, 5000, log=True, label="objects per edge cache"),
    alpha=Slider(0.8, 0.5, 1.2, step=0.01, label="Zipf alpha (web: 0.64-0.83)"),
    origin_rtt_ms=Slider(150, 20, 300, step=10, label="edge to origin RTT (ms)"),
)


def curves_figure(curves: dict[str, HitRatioCurve], title: str) -> go.Figure:
    """Simulated hit ratios (markers) over each policy's closed form (lines), for the
    result of :func:`~sysdesign.scaling.caching.hit_ratio_curves`."""
    data = []
    for i, (policy, curve) in enumerate(curves.items()):
        color = COLORS[i % len(COLORS)]
        if not (policy == "LFU" and "perfect LFU" in curves):  # the same top-C line
            data.append(
                dict(
                    type="scatter", mode="lines", x=curve.sizes, y=curve.predicted,
                    name=f"{policy}: {THEORY_NAMES[policy]}", legendgroup=policy,
                    line=dict(color=color),
                )
            )  # fmt: skip
        data.append(
            dict(
                type="scatter", mode="markers", x=curve.sizes, y=curve.simulated,
                name=f"{policy}, simulated", legendgroup=policy,
                marker=dict(color=color, size=9, symbol="circle-open", line=dict(width=2)),
            )
        )  # fmt: skip
    return new_figure(
        title,
        data=data,
        height=460,
        xaxis=dict(title="cache size (items)", type="log"),
        yaxis=dict(title="hit ratio", range=[0, 1]),
        legend=dict(x=0.01, y=0.99, font=dict(size=11)),
    )
