"""Re-execute course notebooks in place so their stored outputs are current.

    python -m sysdesign.notebooks                 # every notebook in notebooks/ and solutions/
    python -m sysdesign.notebooks notebooks/01-foundations/01-back-of-the-envelope.ipynb

Authors run this after editing a notebook (``make notebooks``); ``make test`` re-executes
the same notebooks with nbval and compares the outputs. A notebook whose execution fails
is left untouched on disk and reported. Widget state is not stored (it would embed
megabytes of JavaScript) and neither is per-cell timing metadata (it would change on
every run).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIRS = ("notebooks", "solutions")


def course_notebooks(root: Path = ROOT) -> list[Path]:
    """Every committed-with-outputs notebook: ``notebooks/**`` and ``solutions/**``."""
    found = []
    for name in DEFAULT_DIRS:
        found += sorted(
            p for p in (root / name).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
        )
    return found


def execute(path: Path, *, timeout: int = 600) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh python3 kernel, in the notebook's folder."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        store_widget_state=False,
    )
    client.execute()
    nb.metadata.pop("widgets", None)
    return nb


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sysdesign.notebooks", description=__doc__)
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all)")
    args = parser.parse_args(argv)
    paths = args.paths or course_notebooks()
    failed = []
    for path in paths:
        if path.suffix != ".ipynb" or not path.is_file():
            print(f"✘ {_shown(path)}: not a notebook file", file=sys.stderr)
            failed.append(path)
            continue
        start = time.perf_counter()
        try:
            nb = execute(path)
        except CellExecutionError as exc:
            print(f"✘ {_shown(path)}: a cell failed, file left as it was\n{exc}", file=sys.stderr)
            failed.append(path)
            continue
        nbformat.write(nb, path)
        print(f"✔ {_shown(path)} ({time.perf_counter() - start:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
