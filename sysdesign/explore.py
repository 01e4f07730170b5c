"""Interactive explorers: a pure function, a figure, and sliders wired to both.

An explorer is three pieces (see ``shared/STYLE.md``):

- ``compute(**params) -> result``: a pure function; tests and benchmarks call it;
- ``figure(result) -> plotly Figure``: no computation, only drawing;
- parameters: each a :class:`Slider` or :class:`Choice` that says its range.

``Explorer.widget()`` puts sliders above one ``FigureWidget``; moving a slider recomputes
and updates that same figure in place. Every explorer registers itself by name in
:data:`REGISTRY`, which is what ``python -m benchmarks`` times.
"""

from __future__ import annotations

import html
import importlib
import math
import pkgutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

REGISTRY: dict[str, Explorer] = {}


@dataclass(frozen=True)
class Slider:
    """A numeric parameter with a range. ``log=True`` spaces the slider logarithmically."""

    default: float
    min: float
    max: float
    step: float | None = None
    log: bool = False
    integer: bool = False
    label: str | None = None

    def __post_init__(self):
        if not self.min <= self.default <= self.max:
            raise ValueError(f"slider default {self.default} is outside [{self.min}, {self.max}]")
        if self.log and self.min <= 0:
            raise ValueError(f"a log slider needs min > 0, got {self.min}")

    def check(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if math.isnan(value) or not self.min <= value <= self.max:
            raise ValueError(f"{name} must be between {self.min:g} and {self.max:g}, got {value!r}")
        if self.integer and value != int(value):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        return int(value) if self.integer else value

    def values(self, points: int) -> list[float]:
        """``points`` values spread over the range (log-spaced for a log slider)."""
        if self.log:
            lo, hi = math.log10(self.min), math.log10(self.max)
            raw = [10 ** (lo + (hi - lo) * i / (points - 1)) for i in range(points)]
        else:
            raw = [self.min + (self.max - self.min) * i / (points - 1) for i in range(points)]
        raw = [min(max(v, self.min), self.max) for v in raw]  # 10**log10(200) != 200
        if self.integer:
            raw = [round(v) for v in raw]
        return sorted(set(raw) | {self.default})

    def make_widget(self, name: str) -> widgets.Widget:
        w = widgets
        common = dict(
            description=self.label or name,
            continuous_update=False,
            style={"description_width": "initial"},
            layout=w.Layout(width="95%"),
        )
        if self.log:
            return w.FloatLogSlider(
                value=self.default,
                base=10,
                min=math.log10(self.min),
                max=math.log10(self.max),
                step=self.step or 0.01,
                **common,
            )
        if self.integer:
            return w.IntSlider(
                value=int(self.default),
                min=int(self.min),
                max=int(self.max),
                step=int(self.step or 1),
                **common,
            )
        step = self.step or (self.max - self.min) / 100
        return w.FloatSlider(value=self.default, min=self.min, max=self.max, step=step, **common)


@dataclass(frozen=True)
class Choice:
    """A parameter that takes one of a few values."""

    default: Any
    options: Sequence[Any]
    label: str | None = None

    def __post_init__(self):
        if self.default not in self.options:
            raise ValueError(f"choice default {self.default!r} is not one of {list(self.options)}")

    def check(self, name: str, value: Any) -> Any:
        if value not in self.options:
            raise ValueError(f"{name} must be one of {list(self.options)}, got {value!r}")
        return value

    def values(self, points: int) -> list[Any]:
        return list(self.options)

    def make_widget(self, name: str) -> widgets.Widget:
        return widgets.Dropdown(
            options=list(self.options),
            value=self.default,
            description=self.label or name,
            style={"description_width": "initial"},
        )


Param = Slider | Choice


@dataclass
class Explorer:
    """A named pure function + figure + parameters; see the module docstring."""

    name: str
    compute_fn: Callable[..., Any]
    figure_fn: Callable[[Any], go.Figure]
    params: Mapping[str, Param]
    title: str | None = None
    describe: Callable[[Any], str] | None = field(default=None)

    def defaults(self) -> dict[str, Any]:
        return {name: param.default for name, param in self.params.items()}

    def validate(self, **params: Any) -> dict[str, Any]:
        """Fill in defaults and check every value; a bad one raises ``ValueError`` naming it."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise ValueError(
                f"{self.name}: unknown parameter {', '.join(unknown)}; "
                f"expected some of {', '.join(self.params)}"
            )
        values = self.defaults()
        for name, value in params.items():
            values[name] = self.params[name].check(name, value)
        return values

    def compute(self, **params: Any) -> Any:
        return self.compute_fn(**self.validate(**params))

    def figure(self, result: Any) -> go.Figure:
        return self.figure_fn(result)

    def render(self, **params: Any) -> go.Figure:
        """Compute and draw in one call: what one slider move costs."""
        return self.figure(self.compute(**params))

    def grid(self, points: int = 5) -> Iterator[dict[str, Any]]:
        """Parameter sets a learner reaches by moving one control at a time from the defaults."""
        yield self.defaults()
        for name, param in self.params.items():
            for value in param.values(points):
                if value != param.default:
                    yield {**self.defaults(), name: value}

    def widget(self, **overrides: Any) -> ExplorerWidget:
        """Sliders and one FigureWidget that updates in place; ``overrides`` set start values."""
        return ExplorerWidget(self, self.validate(**overrides))

    def time(self, points: int = 5, repeat: int = 1) -> list[float]:
        """Milliseconds for compute + figure at every point of :meth:`grid`."""
        times = []
        for params in list(self.grid(points)) * repeat:
            start = time.perf_counter()
            self.render(**params)
            times.append((time.perf_counter() - start) * 1000)
        return times


def register(explorer: Explorer) -> Explorer:
    if explorer.name in REGISTRY and REGISTRY[explorer.name] is not explorer:
        raise ValueError(f"an explorer named {explorer.name!r} is already registered")
    REGISTRY[explorer.name] = explorer
    return explorer


def explorer(
    name: str,
    compute: Callable[..., Any],
    figure: Callable[[Any], go.Figure],
    *,
    title: str | None = None,
    describe: Callable[[Any], str] | None = None,
    **params: Param,
) -> Explorer:
    """Define and register an explorer: ``explorer("name", compute, figure, x=Slider(...))``."""
    return register(Explorer(name, compute, figure, params, title=title, describe=describe))


def load_all() -> dict[str, Explorer]:
    """Import every module of the package so that every explorer is registered."""
    import sysdesign

    for info in pkgutil.walk_packages(sysdesign.__path__, "sysdesign."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    return REGISTRY


def update_figure_widget(target: go.FigureWidget, fig: go.Figure) -> None:
    """Make ``target`` show ``fig`` while keeping the same widget on the page."""
    same_traces = len(target.data) == len(fig.data) and all(
        a.type == b.type for a, b in zip(target.data, fig.data, strict=True)
    )
    if not same_traces:
        target.data = ()
        target.add_traces(list(fig.data))
        target.layout = fig.layout
        return
    with target.batch_update():
        for old, new in zip(target.data, fig.data, strict=True):
            fresh = new.to_plotly_json()
            stale = {key: None for key in old.to_plotly_json() if key not in fresh}
            stale.pop("uid", None)
            stale.pop("type", None)
            old.update({**stale, **fresh}, overwrite=True)
        target.layout.update(fig.layout.to_plotly_json(), overwrite=True)


class ExplorerWidget(widgets.VBox):
    """Controls + a status line + one FigureWidget. Displays as itself in JupyterLab."""

    def __init__(self, explorer: Explorer, values: dict[str, Any]):
        w = widgets
        self.explorer = explorer
        self.controls = {}
        for name, param in explorer.params.items():
            control = param.make_widget(name)
            control.value = values[name]
            control.observe(self._on_change, names="value")
            self.controls[name] = control
        self.status = w.HTML()
        result = explorer.compute(**values)
        self.figure = go.FigureWidget(explorer.figure(result))
        self.updates = 0
        self._describe(result)
        header = [w.HTML(f"<b>{html.escape(explorer.title)}</b>")] if explorer.title else []
        grid = w.GridBox(
            list(self.controls.values()),
            layout=w.Layout(grid_template_columns="repeat(2, 50%)"),
        )
        super().__init__([*header, grid, self.status, self.figure])

    def values(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **values: Any) -> None:
        """Move controls from code (as a learner would with the mouse)."""
        for name, value in values.items():
            if name not in self.controls:
                raise ValueError(f"{self.explorer.name}: unknown parameter {name!r}")
            self.controls[name].value = value

    def _describe(self, result: Any = None, error: str | None = None) -> None:
        if error:
            self.status.value = f"<span style='color:#b00'>⚠ {html.escape(error)}</span>"
        elif self.explorer.describe is not None:
            self.status.value = self.explorer.describe(result)
        else:
            self.status.value = ""

    def _on_change(self, _change) -> None:
        values = self.values()
        try:
            result = self.explorer.compute(**values)
            fig = self.explorer.figure(result)
        except ValueError as exc:
            self._describe(error=str(exc))
            return
        update_figure_widget(self.figure, fig)
        self.updates += 1
        self._describe(result)

    def __repr__(self) -> str:  # the text/plain stored in notebooks: short and stable
        return f"<explorer {self.explorer.name!r}: {', '.join(self.controls)}>"
