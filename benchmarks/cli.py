"""The command line of ``python -m benchmarks``; see :mod:`benchmarks` for what it measures.

::

    python -m benchmarks                      # explorers, notebooks, rate limiters in Redis
    python -m benchmarks --json bench.json    # ... and write the numbers as JSON
    python -m benchmarks --explorers-only     # or --notebooks-only, or --ratelimit-only
    python -m benchmarks --filter capacity    # only explorers/notebooks whose name contains it
                                              # (the Redis benchmark runs if "ratelimit" does)

Progress goes to stderr, the tables to stdout. Exit status: 0 when everything timed is fine,
1 when an explorer misses the p95 target (or raises), a notebook fails or the rate limiter
benchmark fails (a missing redis-server only skips it), 2 for usage errors.
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
from benchmarks.ratelimit import (
    DEFAULT_REQUESTS,
    DEFAULT_ROUNDS,
    RatelimitReport,
    ratelimit_json,
    ratelimit_table,
    run_ratelimit,
)
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


def report_json(
    explorers: Sequence[ExplorerTiming],
    notebooks: Sequence[NotebookTiming],
    ratelimit: RatelimitReport | None = None,
) -> dict:
    """``{"explorers": {name: {"p50_ms", "p95_ms", ...}}, "notebooks": {path: seconds},
    "ratelimit": {name: {"decisions_per_s", "commands_per_decision", "ratio_vs_limits", ...}},
    ...}``.

    Only successful runs appear under ``"explorers"``/``"notebooks"``/``"ratelimit"``; failures
    are listed with their one-line message under ``"errors"``, a skipped rate limiter benchmark
    under ``"skipped"``. ``"ok"`` is true when the exit status is 0.
    """
    errors = {
        "explorers": {r.name: r.error for r in explorers if r.error is not None},
        "notebooks": {r.path: r.error for r in notebooks if not r.ok},
    }
    if ratelimit is not None and ratelimit.error:
        errors["ratelimit"] = ratelimit.error
    report = {
        "target_p95_ms": TARGET_P95_MS,
        "explorers": {r.name: r.to_json() for r in explorers if r.error is None},
        "notebooks": {r.path: round(r.seconds, 3) for r in notebooks if r.ok},
        "ratelimit": ratelimit_json(ratelimit) if ratelimit is not None else {},
        "errors": errors,
        "ok": exit_code(explorers, notebooks, ratelimit) == 0,
    }
    if ratelimit is not None and ratelimit.skipped:
        report["skipped"] = {"ratelimit": ratelimit.skipped}
    return report


def exit_code(
    explorers: Sequence[ExplorerTiming],
    notebooks: Sequence[NotebookTiming],
    ratelimit: RatelimitReport | None = None,
) -> int:
    """1 if any explorer is SLOW or ERROR, any notebook failed or the rate limiter benchmark
    failed (skipped is fine), else 0."""
    fine = all(r.ok for r in explorers) and all(r.ok for r in notebooks)
    return 0 if fine and (ratelimit is None or ratelimit.ok) else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            f"Time every explorer (compute + figure, target p95 < {TARGET_P95_MS:g} ms) and "
            "every notebook's headless execution; compare the course's Redis rate limiters "
            "with the limits library's on a real redis-server."
        ),
    )
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the numbers here")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--explorers-only", action="store_true", help="skip the notebooks")
    only.add_argument("--notebooks-only", action="store_true", help="skip the explorers")
    only.add_argument(
        "--ratelimit-only",
        action="store_true",
        help="only the rate limiter benchmark (course vs limits, on a real redis-server)",
    )
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
        "--ratelimit-requests",
        type=int,
        default=DEFAULT_REQUESTS,
        help=f"requests in the rate limiter benchmark's trace (default {DEFAULT_REQUESTS})",
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
    if args.ratelimit_requests < 1:
        parser.error("--ratelimit-requests must be at least 1")
    return args


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    """Run the benchmarks, print the tables, maybe write JSON; return the exit status."""
    args = parse_args(argv)
    needle = (args.filter or "").lower()

    def progress(what: str) -> None:
        print(f"timing {what} ...", file=sys.stderr, flush=True)

    explorer_results: list[ExplorerTiming] = []
    notebook_results: list[NotebookTiming] = []
    ratelimit: RatelimitReport | None = None
    run_explorers = not (args.notebooks_only or args.ratelimit_only)
    run_notebooks = not (args.explorers_only or args.ratelimit_only)
    run_ratelimit_benchmark = not (args.explorers_only or args.notebooks_only) and (
        needle in "ratelimit"
    )
    selected = 0
    if run_explorers:
        from sysdesign.explore import load_all

        chosen = [e for name, e in sorted(load_all().items()) if needle in name.lower()]
        selected += len(chosen)
        explorer_results = time_explorers(
            chosen, points=args.points, repeat=args.repeat, progress=progress
        )
    if run_notebooks:
        paths = [
            p for p in find_notebooks(root) if needle in p.relative_to(root).as_posix().lower()
        ]
        selected += len(paths)
        notebook_results = time_notebooks(paths, root, progress=progress, timeout=args.timeout)
    if run_ratelimit_benchmark:
        selected += 1
        progress("rate limiters in Redis: the course's against limits'")
        ratelimit = run_ratelimit(requests=args.ratelimit_requests, rounds=DEFAULT_ROUNDS)

    if args.filter is not None and selected == 0:
        print(f"nothing matches --filter {args.filter!r}", file=sys.stderr)
        return 2

    sections = []
    if run_explorers:
        sections.append(explorer_table(explorer_results))
    if run_notebooks:
        sections.append(notebook_table(notebook_results) if notebook_results else "no notebooks")
    if ratelimit is not None:
        sections.append(ratelimit_table(ratelimit))
    print("\n\n".join(sections))

    code = exit_code(explorer_results, notebook_results, ratelimit)
    slow = [r.name for r in explorer_results if r.error is None and not r.ok]
    broken = [r.name for r in explorer_results if r.error is not None]
    failed = [r.path for r in notebook_results if not r.ok]
    if slow:
        print(f"\nSLOW (p95 >= {TARGET_P95_MS:g} ms): {', '.join(slow)}")
    if broken:
        print(f"\nexplorers that raised: {', '.join(broken)}")
    if failed:
        print(f"\nnotebooks that failed: {', '.join(failed)}")
    if ratelimit is not None and ratelimit.error:
        print("\nthe rate limiter benchmark failed")

    if args.json is not None:
        report = report_json(explorer_results, notebook_results, ratelimit)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)
    return code
