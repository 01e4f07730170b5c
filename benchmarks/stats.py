"""Percentiles and plain-text tables for the benchmark report."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """Return ``(p50, p95)`` of ``samples``.

    Uses :func:`statistics.quantiles` with ``n=100`` and ``method="inclusive"``: linear
    interpolation between the closest ranks, treating the samples as the whole population -- the
    same numbers as ``numpy.percentile``'s default. One sample is its own p50 and p95.
    """
    if not samples:
        raise ValueError("percentiles of no samples")
    if len(samples) == 1:
        return float(samples[0]), float(samples[0])
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94]


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None
) -> str:
    """Lay out ``rows`` under ``headers`` in aligned columns, with a dashed rule under the header.

    ``align`` has one character per column, ``"l"`` or ``"r"`` (default: first column left, the
    rest right). Cells are converted with ``str``; lines carry no trailing spaces.
    """
    align = align or "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers) or any(len(row) != len(headers) for row in rows):
        raise ValueError("every row and the alignment need one entry per header")
    cells = [list(map(str, headers)), *[list(map(str, row)) for row in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        parts = [
            value.ljust(width) if how == "l" else value.rjust(width)
            for value, width, how in zip(values, widths, align, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule, *(line(values) for values in cells[1:])])
