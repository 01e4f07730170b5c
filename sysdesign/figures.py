"""The course's plotly look: one small template, so saved notebooks stay short.

Plotly's built-in templates are about 7 KB of JSON that every figure carries into the
saved notebook; this one is a few hundred bytes and reads well in light mode.
"""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

TEMPLATE_NAME = "sysdesign"
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

_AXIS = dict(gridcolor="#e5e5e5", linecolor="#444", zerolinecolor="#ccc", ticks="outside")

pio.templates[TEMPLATE_NAME] = go.layout.Template(
    layout=dict(
        colorway=COLORS,
        font=dict(family="Arial, sans-serif", size=13, color="#222"),
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis=_AXIS,
        yaxis=_AXIS,
        hovermode="closest",
        legend=dict(bgcolor="rgba(255,255,255,0.6)"),
    )
)


def new_figure(title: str | None = None, *, height: int = 380, **layout) -> go.Figure:
    """An empty figure in the course's template."""
    fig = go.Figure()
    layout.setdefault("margin", dict(l=60, r=20, t=50 if title else 20, b=50))
    fig.update_layout(template=TEMPLATE_NAME, title=title, height=height, **layout)
    return fig
