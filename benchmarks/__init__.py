"""Benchmarks for the course: ``python -m benchmarks [--json PATH]``.

Two things are timed:

- **Explorers.** Every explorer in :data:`sysdesign.explore.REGISTRY` (after
  :func:`sysdesign.explore.load_all`) is rendered -- compute + figure, i.e.
  :meth:`~sysdesign.explore.Explorer.render`, what one slider move costs -- at every point of
  ``Explorer.grid(points=5)``: one warm-up pass that is thrown away, then ``--repeat`` (default 3)
  measured passes. The p50 and p95 of those milliseconds are reported; the target is
  **p95 < 100 ms**, so that dragging a slider feels immediate.
- **Notebooks.** Every ``*.ipynb`` under ``notebooks/`` and ``solutions/`` (relative to the repo
  root, the parent of this package) is executed headless with nbclient: kernel ``python3``, working
  directory = the notebook's folder, 300 s timeout per cell, never written back. The wall-clock
  seconds include kernel start-up and shutdown, i.e. what a learner's "Restart and run all" costs.

Exit status: 0 when every timed explorer meets the target and every notebook runs; 1 when any
explorer's p95 is 100 ms or more (reported SLOW), any explorer raises, or any notebook fails to
execute (reported with a one-line error); 2 for a usage error, including a ``--filter`` that
matches nothing. A failing status lets CI catch a regression that would make the course sluggish.

Modules: :mod:`benchmarks.stats` (percentiles, table formatting), :mod:`benchmarks.explorers`,
:mod:`benchmarks.notebooks`, :mod:`benchmarks.cli` (the command line).
"""

from pathlib import Path

#: The p95 an explorer must stay under, in milliseconds.
TARGET_P95_MS = 100.0

#: The repository root: the parent of the ``benchmarks`` folder.
ROOT = Path(__file__).resolve().parent.parent

#: Folders (relative to the root) whose notebooks are timed.
NOTEBOOK_DIRS = ("notebooks", "solutions")

__all__ = ["NOTEBOOK_DIRS", "ROOT", "TARGET_P95_MS"]
