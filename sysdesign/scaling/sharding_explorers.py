"""Sharding explorers: keys moved on a resize, load spread vs virtual nodes, a hot key.

Every explorer works on one key set whose hashes are computed once per process
(:func:`~sysdesign.scaling.sharding.key_hashes`), and the ring on cached vnode positions,
so a slider move costs a few numpy calls.
"""

from __future__ import annotations

import plotly.graph_objects as go

from sysdesign.explore import Choice, Slider, explorer
from sysdesign.figures import COLORS, new_figure
from sysdesign.scaling.sharding import (
    SCHEMES,
    hot_key_load,
    hot_key_max_over_mean,
    keys_per_node,
    load_cv,
    resize_moves,
    ring_load_cv,
)

EXPLORER_KEYS = 20_000  # keys in every explorer: sampling noise on a fraction is < 0.5%


def resize(nodes: int = 10, vnodes: int = 100, change: str = "add") -> list[dict]:
    """Fraction of keys that move when one node is added (or the last one removed)."""
    return [resize_moves(s, nodes, vnodes, change, EXPLORER_KEYS) for s in SCHEMES]


def resize_figure(rows: list[dict]) -> go.Figure:
    names = [r["scheme"] for r in rows]
    verb = "added to" if rows[0]["change"] == "add" else "removed from"
    return new_figure(
        f"Keys moved when one node is {verb} {rows[0]['nodes']} nodes",
        height=340,
        data=[
            dict(type="bar", name="simulated", x=names, y=[r["moved"] for r in rows],
                 marker=dict(color=COLORS[0]), text=[f"{r['moved']:.1%}" for r in rows],
                 textposition="outside"),
            dict(type="scatter", mode="markers", name="theory", x=names,
                 y=[r["theory"] for r in rows],
                 marker=dict(symbol="line-ew-open", size=40, color=COLORS[3],
                             line=dict(width=3))),
        ],
        yaxis=dict(title="fraction of keys moved", range=[0, 1.08], tickformat=".0%"),
    )  # fmt: skip


def describe_resize(rows: list[dict]) -> str:
    ring = next(r for r in rows if r["scheme"] == "ring")
    modulo = next(r for r in rows if r["scheme"] == "modulo")
    return (
        f"modulo moves {modulo['moved']:.1%} (theory {modulo['theory']:.1%}); the ring "
        f"{ring['moved']:.1%} (theory {ring['theory']:.1%}), "
        f"{'all' if ring['only_the_changed_node'] else 'not all'} to or from the changed node."
    )


def balance(nodes: int = 10, vnodes: int = 100, scheme: str = "ring") -> dict:
    """Keys per node for one scheme, with the ring's predicted spread."""
    counts = keys_per_node(scheme, nodes, vnodes, EXPLORER_KEYS)
    return dict(
        scheme=scheme,
        nodes=nodes,
        vnodes=vnodes,
        counts=counts,
        cv=load_cv(counts),
        ring_theory=ring_load_cv(nodes, vnodes, EXPLORER_KEYS),
    )


def balance_figure(result: dict) -> go.Figure:
    counts = result["counts"]
    mean = counts.mean()
    return new_figure(
        f"{result['scheme']}: keys per node, std/mean {result['cv']:.1%}",
        height=340,
        data=[
            dict(type="bar", x=[f"node-{i}" for i in range(len(counts))], y=counts,
                 marker=dict(color=COLORS[0]), name="keys"),
            dict(type="scatter", mode="lines", x=[-0.5, len(counts) - 0.5], y=[mean, mean],
                 line=dict(color=COLORS[3], dash="dash"), name="mean", xaxis="x2"),
        ],
        xaxis2=dict(overlaying="x", range=[-0.5, len(counts) - 0.5], visible=False),
        yaxis=dict(title="keys", range=[0, 2.2 * mean]),
        showlegend=False,
    )  # fmt: skip


def describe_balance(result: dict) -> str:
    text = (
        f"busiest node {result['counts'].max() / result['counts'].mean():.2f}x the mean, "
        f"std/mean {result['cv']:.1%}"
    )
    if result["scheme"] == "ring":
        text += (
            f"; ring theory {result['ring_theory']:.1%} on average over rings "
            f"(rule of thumb 1/sqrt({result['vnodes']}) = {result['vnodes'] ** -0.5:.1%})"
        )
    return text + "."


def hot_key(
    hot_share: float = 0.2, nodes: int = 10, split: int = 1, cached: float = 0.0,
    scheme: str = "ring",
) -> dict:  # fmt: skip
    """Traffic per node with one hot key, and the bound no scheme beats without a fix."""
    result = hot_key_load(scheme, nodes, hot_share, split, cached, keys=EXPLORER_KEYS)
    result.update(
        nodes=nodes,
        hot_share=hot_share,
        unsplit_bound=hot_key_max_over_mean(nodes, hot_share),
    )
    return result


def hot_key_figure(result: dict) -> go.Figure:
    names = [f"node-{i}" for i in range(result["nodes"])]
    return new_figure(
        f"Busiest node {result['max_over_mean']:.2f}x the mean "
        f"(one unsplit, uncached hot key: {result['unsplit_bound']:.2f}x)",
        height=340,
        data=[
            dict(type="bar", name="other keys", x=names, y=result["background"],
                 marker=dict(color=COLORS[0])),
            dict(type="bar", name="the hot key", x=names, y=result["hot"],
                 marker=dict(color=COLORS[3])),
        ],
        barmode="stack",
        yaxis=dict(title="share of the traffic reaching the shards", tickformat=".0%"),
    )  # fmt: skip


def describe_hot_key(result: dict) -> str:
    return (
        f"a key with {result['hot_share']:.0%} of the requests; the busiest node serves "
        f"{result['max_over_mean']:.2f}x the average."
    )


shard_resize = explorer(
    "shard-resize",
    resize,
    resize_figure,
    title="Resizing: how many keys move?",
    describe=describe_resize,
    nodes=Slider(10, 2, 50, integer=True, label="nodes"),
    vnodes=Slider(100, 1, 1000, log=True, integer=True, label="virtual nodes (ring)"),
    change=Choice("add", ["add", "remove"], label="one node"),
)
shard_balance = explorer(
    "shard-balance",
    balance,
    balance_figure,
    title="Load spread vs virtual nodes",
    describe=describe_balance,
    nodes=Slider(10, 2, 40, integer=True, label="nodes"),
    vnodes=Slider(100, 1, 1000, log=True, integer=True, label="virtual nodes (ring)"),
    scheme=Choice("ring", list(SCHEMES), label="scheme"),
)
shard_hot_key = explorer(
    "shard-hot-key",
    hot_key,
    hot_key_figure,
    title="A hot key",
    describe=describe_hot_key,
    hot_share=Slider(0.2, 0.0, 0.5, step=0.01, label="hot key's share"),
    nodes=Slider(10, 2, 40, integer=True, label="nodes"),
    split=Slider(1, 1, 32, integer=True, label="split into sub-keys"),
    cached=Slider(0.0, 0.0, 0.99, step=0.01, label="hot reads cached"),
    scheme=Choice("ring", list(SCHEMES), label="scheme"),
)

__all__ = ["balance", "hot_key", "resize", "shard_balance", "shard_hot_key", "shard_resize"]
