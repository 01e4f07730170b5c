"""Benchmarks for the course: ``python -m benchmarks [--json PATH]``.

Three things are measured:

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

- **Rate limiters in Redis.** The course's ``RedisSlidingWindowLog`` and
  ``RedisSlidingWindowCounter`` against the ``limits`` library's moving window and sliding window
  counter, on a throwaway ``redis-server``, sharing one connection pool and one seeded trace:
  decisions per second, the ratio to limits, round trips and Redis commands per decision
  (:mod:`benchmarks.ratelimit`; ``--ratelimit-only`` runs just this, and it reports "skipped:
  redis-server not installed" where the binary is missing). Results go under ``"ratelimit"`` in
  the JSON.

Exit status: 0 when every timed explorer meets the target and every notebook runs; 1 when any
explorer's p95 is 100 ms or more (reported SLOW), any explorer raises, any notebook fails to
execute (reported with a one-line error) or the rate limiter benchmark fails (being skipped is
not a failure); 2 for a usage error, including a ``--filter`` that matches nothing. A failing
status lets CI catch a regression that would make the course sluggish. (Being slower than limits
is reported, not failed: the numbers depend on the machine.)

Modules: :mod:`benchmarks.stats` (percentiles, table formatting), :mod:`benchmarks.explorers`,
:mod:`benchmarks.notebooks`, :mod:`benchmarks.ratelimit`, :mod:`benchmarks.cli` (the command
line).
"""

from pathlib import Path

#: The p95 an explorer must stay under, in milliseconds.
TARGET_P95_MS = 100.0

#: The repository root: the parent of the ``benchmarks`` folder.
ROOT = Path(__file__).resolve().parent.parent

#: Folders (relative to the root) whose notebooks are timed.
NOTEBOOK_DIRS = ("notebooks", "solutions")

__all__ = ["NOTEBOOK_DIRS", "ROOT", "TARGET_P95_MS"]
