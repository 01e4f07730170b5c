"""The back-of-the-envelope explorer: move a workload's numbers, watch the estimate."""

from __future__ import annotations

import plotly.graph_objects as go

from sysdesign.capacity.estimate import TWITTER_LIKE, Estimate, estimate_capacity, human
from sysdesign.explore import Slider, explorer
from sysdesign.figures import new_figure

# (field of Estimate, title, unit) for each number on the dashboard, in reading order.
TILES = [
    ("avg_qps", "average requests/s", ""),
    ("peak_qps", "peak requests/s", ""),
    ("servers", "servers at peak", ""),
    ("storage_per_day", "storage per day", "B"),
    ("storage_total", "storage, whole retention", "B"),
    ("peak_egress", "peak egress", "B/s"),
    ("write_qps", "writes/s", ""),
    ("ingress", "ingress", "B/s"),
    ("cache_bytes", "cache for the hot set", "B"),
]


def capacity_figure(estimate: Estimate) -> go.Figure:
    """A 3 x 3 grid of numbers: traffic, storage and bandwidth, cache and servers."""
    tiles = []
    for i, (field, title, unit) in enumerate(TILES):
        row, col = divmod(i, 3)
        tiles.append(
            dict(
                type="indicator",
                mode="number",
                value=getattr(estimate, field),
                number=dict(
                    valueformat=",d" if field == "servers" else ".3~s",
                    suffix=unit,
                    font=dict(size=34),  # plotly's default (80 px) collides in a 3 x 3 grid
                ),
                title=dict(text=title, font=dict(size=13)),
                domain=dict(x=[col / 3, (col + 1) / 3], y=[1 - (row + 1) / 3, 1 - row / 3]),
            )
        )
    return new_figure(data=tiles, height=330, margin=dict(l=10, r=10, t=10, b=10))


def describe_estimate(estimate: Estimate) -> str:
    return (
        f"{human(estimate.requests_per_day)} requests a day = {human(estimate.avg_qps)}/s on "
        f"average, {human(estimate.peak_qps)}/s at peak; "
        f"{human(estimate.storage_total, 'B')} stored over the retention period."
    )


capacity = explorer(
    "capacity",
    estimate_capacity,
    capacity_figure,
    title="Back-of-the-envelope estimate",
    describe=describe_estimate,
    daily_active_users=Slider(TWITTER_LIKE["daily_active_users"], 1e4, 1e9, log=True,
                              label="daily active users"),
    requests_per_user=Slider(175, 1, 1000, log=True, label="requests per user per day"),
    read_write_ratio=Slider(65, 1, 1000, log=True, label="reads per write"),
    write_bytes=Slider(1000, 100, 1e8, log=True, label="bytes per write"),
    read_bytes=Slider(10_000, 100, 1e8, log=True, label="bytes per read"),
    retention_days=Slider(1825, 1, 3650, integer=True, label="retention (days)"),
    peak_factor=Slider(2.6, 1, 10, step=0.1, label="peak / average"),
    replication=Slider(3, 1, 5, integer=True, label="replicas"),
    cache_hot_fraction=Slider(0.2, 0, 1, step=0.05, label="hot fraction cached"),
    server_qps=Slider(10_000, 100, 1e6, log=True, label="requests/s per server"),
)  # fmt: skip
