"""Timing every registered explorer's compute + figure over its parameter grid."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from benchmarks import TARGET_P95_MS
from benchmarks.stats import percentiles
from sysdesign.explore import Explorer


@dataclass
class ExplorerTiming:
    """The measured renders of one explorer, or the error that stopped it."""

    name: str
    points: int = 0  # parameter sets in the grid
    samples: list[float] = field(default_factory=list)  # milliseconds, measured passes only
    error: str | None = None

    @property
    def p50_ms(self) -> float:
        return percentiles(self.samples)[0]

    @property
    def p95_ms(self) -> float:
        return percentiles(self.samples)[1]

    @property
    def ok(self) -> bool:
        """Rendered without error and met the p95 target."""
        return self.error is None and bool(self.samples) and self.p95_ms < TARGET_P95_MS

    @property
    def status(self) -> str:
        if self.error is not None:
            return "ERROR"
        return "OK" if self.ok else "SLOW"

    def to_json(self) -> dict:
        return {
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "max_ms": round(max(self.samples), 3),
            "points": self.points,
            "samples": len(self.samples),
            "ok": self.ok,
        }


def time_explorer(explorer: Explorer, points: int = 5, repeat: int = 3) -> ExplorerTiming:
    """Render ``explorer`` at every point of ``grid(points)``: one warm-up pass, then ``repeat``.

    The warm-up pass (imports, caches, plotly's first-figure cost) is not recorded. An exception
    from the explorer is caught and kept as a one-line ``error``.
    """
    timing = ExplorerTiming(explorer.name, points=len(list(explorer.grid(points))))
    try:
        explorer.time(points, repeat=1)
        timing.samples = explorer.time(points, repeat=repeat)
    except Exception as exc:  # report and go on with the other explorers
        timing.error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return timing


def time_explorers(
    explorers: Iterable[Explorer], points: int = 5, repeat: int = 3, progress=None
) -> list[ExplorerTiming]:
    """:func:`time_explorer` for each; ``progress(name)`` is called before each one if given."""
    results = []
    for explorer in explorers:
        if progress is not None:
            progress(explorer.name)
        results.append(time_explorer(explorer, points=points, repeat=repeat))
    return results
