"""Executing the course notebooks headless with nbclient and timing them."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from benchmarks import NOTEBOOK_DIRS

CELL_TIMEOUT_S = 300
KERNEL_NAME = "python3"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookFailed(Exception):
    """A notebook did not execute to the end; the message is one line."""


@dataclass
class NotebookTiming:
    """Seconds to execute one notebook (``path`` relative to the root), or its one-line error."""

    path: str
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def find_notebooks(root: Path, dirs: tuple[str, ...] = NOTEBOOK_DIRS) -> list[Path]:
    """Every ``*.ipynb`` under ``root/<dir>`` for each of ``dirs``, sorted, skipping checkpoints."""
    found = []
    for name in dirs:
        folder = root / name
        if folder.is_dir():
            found += [
                path
                for path in folder.rglob("*.ipynb")
                if ".ipynb_checkpoints" not in path.relative_to(root).parts
            ]
    return sorted(found)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(_ANSI.sub("", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe_failure(exc: Exception, nb: nbformat.NotebookNode) -> str:
    """``cell N: Name: value`` for an error raised in a cell, else the exception's first line."""
    ename = getattr(exc, "ename", None)
    if ename:
        message = f"{ename}: {getattr(exc, 'evalue', '')}".rstrip(": ")
        for index, cell in enumerate(nb.cells, start=1):
            if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
                return _one_line(f"cell {index}: {message}")
        return _one_line(message)
    lines = [line for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    return _one_line(f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": "))


def time_notebook(
    path: Path, timeout: int = CELL_TIMEOUT_S, kernel_name: str = KERNEL_NAME
) -> float:
    """Execute the notebook at ``path`` and return the wall-clock seconds.

    Kernel ``kernel_name`` runs in the notebook's own folder, each cell gets ``timeout`` seconds;
    the executed notebook is only held in memory, never written back. The time includes kernel
    start-up and shutdown. Raises :class:`NotebookFailed` with a one-line message on any failure
    (a cell's error, a timeout, a dead kernel, an unreadable file).
    """
    path = Path(path)
    start = time.perf_counter()
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:
        raise NotebookFailed(_describe_failure(exc, nbformat.v4.new_notebook())) from exc
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    try:
        client.execute()
    except Exception as exc:
        raise NotebookFailed(_describe_failure(exc, nb)) from exc
    return time.perf_counter() - start


def time_notebooks(paths: list[Path], root: Path, progress=None, **kwargs) -> list[NotebookTiming]:
    """:func:`time_notebook` for each path, catching failures; ``progress(rel)`` before each."""
    results = []
    for path in paths:
        rel = path.relative_to(root).as_posix()
        if progress is not None:
            progress(rel)
        start = time.perf_counter()
        try:
            results.append(NotebookTiming(rel, time_notebook(path, **kwargs)))
        except NotebookFailed as exc:
            results.append(NotebookTiming(rel, time.perf_counter() - start, error=str(exc)))
    return results
