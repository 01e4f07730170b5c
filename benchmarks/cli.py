"""The command line of ``python -m benchmarks``; see :mod:`benchmarks` for what it measures.

::

    python -m benchmarks                      # explorers, then notebooks; print the tables
    python -m benchmarks --json bench.json    # ... and write the numbers as JSON
    python -m benchmarks --explorers-only     # or --notebooks-only
    python -m benchmarks --filter capacity    # only explorers/notebooks whose name contains it

Progress goes to stderr, the tables to stdout. Exit status: 0 when everything timed is fine,
1 when an explorer misses the p95 target (or raises) or a notebook fails, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import ROOT, TARGET_P95_MS
from benchmarks.explorers import ExplorerTiming, time_explorers
from benchmarks.notebooks import CELL_TIMEOUT_S, NotebookTiming, find_notebooks, time_notebooks
from benchmarks.stats import format_table


def explorer_table(results: Sequence[ExplorerTiming]) -> str:
    """Explorer, p50 ms, p95 ms, target, OK/SLOW (or ERROR plus its message)."""
    target = f"p95 < {TARGET_P95_MS:g} ms"
    rows = []
    for r in results:
        if r.error is not None:
            rows.append([r.name, "-", "-", target, f"ERROR  {r.error}"])
        else:
            rows.append([r.name, f"{r.p50_ms:.1f}", f"{r.p95_ms:.1f}", target, r.status])
    return format_table(["explorer", "p50 ms", "p95 ms", "target", "status"], rows, "lrrll")


def notebook_table(results: Sequence[NotebookTiming]) -> str:
    """Notebook (relative path), seconds, OK or FAILED plus the one-line error."""
    rows = [[r.path, f"{r.seconds:.1f}", "OK" if r.ok else f"FAILED  {r.error}"] for r in results]
    return format_table(["notebook", "seconds", "status"], rows, "lrl")


def report_json(explorers: Sequence[ExplorerTiming], notebooks: Sequence[NotebookTiming]) -> dict:
    """``{"explorers": {name: {"p50_ms", "p95_ms", ...}}, "notebooks": {path: seconds}, ...}``.

    Only successful runs appear under ``"explorers"``/``"notebooks"``; failures are listed with
    their one-line message under ``"errors"``. ``"ok"`` is true when the exit status is 0.
    """
    return {
        "target_p95_ms": TARGET_P95_MS,
        "explorers": {r.name: r.to_json() for r in explorers if r.error is None},
        "notebooks": {r.path: round(r.seconds, 3) for r in notebooks if r.ok},
        "errors": {
            "explorers": {r.name: r.error for r in explorers if r.error is not None},
            "notebooks": {r.path: r.error for r in notebooks if not r.ok},
        },
        "ok": exit_code(explorers, notebooks) == 0,
    }


def exit_code(explorers: Sequence[ExplorerTiming], notebooks: Sequence[NotebookTiming]) -> int:
    """1 if any explorer is SLOW or ERROR or any notebook failed, else 0."""
    return 0 if all(r.ok for r in explorers) and all(r.ok for r in notebooks) else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            f"Time every explorer (compute + figure, target p95 < {TARGET_P95_MS:g} ms) and "
            "every notebook's headless execution."
        ),
    )
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the numbers here")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--explorers-only", action="store_true", help="skip the notebooks")
    only.add_argument("--notebooks-only", action="store_true", help="skip the explorers")
    parser.add_argument(
        "--filter",
        metavar="SUBSTR",
        help="only explorers / notebook paths containing SUBSTR (case-insensitive)",
    )
    parser.add_argument("--points", type=int, default=5, help="grid points per slider (default 5)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="measured passes after the warm-up (default 3)"
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=CELL_TIMEOUT_S,
        help=f"seconds per notebook cell (default {CELL_TIMEOUT_S})",
    )
    args = parser.parse_args(argv)
    if args.points < 2 or args.repeat < 1:
        parser.error("--points must be at least 2 and --repeat at least 1")
    return args


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    """Run the benchmarks, print the tables, maybe write JSON; return the exit status."""
    args = parse_args(argv)
    needle = (args.filter or "").lower()

    def progress(what: str) -> None:
        print(f"timing {what} ...", file=sys.stderr, flush=True)

    explorer_results: list[ExplorerTiming] = []
    notebook_results: list[NotebookTiming] = []
    selected = 0
    if not args.notebooks_only:
        from sysdesign.explore import load_all

        chosen = [e for name, e in sorted(load_all().items()) if needle in name.lower()]
        selected += len(chosen)
        explorer_results = time_explorers(
            chosen, points=args.points, repeat=args.repeat, progress=progress
        )
    if not args.explorers_only:
        paths = [
            p for p in find_notebooks(root) if needle in p.relative_to(root).as_posix().lower()
        ]
        selected += len(paths)
        notebook_results = time_notebooks(paths, root, progress=progress, timeout=args.timeout)

    if args.filter is not None and selected == 0:
        print(f"nothing matches --filter {args.filter!r}", file=sys.stderr)
        return 2

    sections = []
    if not args.notebooks_only:
        sections.append(explorer_table(explorer_results))
    if not args.explorers_only:
        sections.append(notebook_table(notebook_results) if notebook_results else "no notebooks")
    print("\n\n".join(sections))

    code = exit_code(explorer_results, notebook_results)
    slow = [r.name for r in explorer_results if r.error is None and not r.ok]
    broken = [r.name for r in explorer_results if r.error is not None]
    failed = [r.path for r in notebook_results if not r.ok]
    if slow:
        print(f"\nSLOW (p95 >= {TARGET_P95_MS:g} ms): {', '.join(slow)}")
    if broken:
        print(f"\nexplorers that raised: {', '.join(broken)}")
    if failed:
        print(f"\nnotebooks that failed: {', '.join(failed)}")

    if args.json is not None:
        report = report_json(explorer_results, notebook_results)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)
    return code
