"""Generate the learners' ``labs/`` notebooks from the authors' ``solutions/`` notebooks.

``solutions/*.ipynb`` is the source: complete, runnable notebooks whose checks all pass.
``labs/<same name>`` is generated from each of them::

    python -m sysdesign.labs            # (re)generate labs/ from solutions/
    python -m sysdesign.labs --check    # write nothing; exit 1 if labs/ is out of date
    python -m sysdesign.labs --force    # also overwrite labs a learner edited (backed up first)

How a solution notebook becomes a lab:

- A code cell tagged ``solution`` becomes a stub: its top-level imports, then each
  top-level function's decorators, signature and docstring with the body replaced by
  ``# YOUR CODE HERE`` and ``raise NotImplementedError("<name>")``. Every other
  top-level statement of the cell is dropped. A cell without a function becomes
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (after its imports). Imports
  that only the removed bodies used get ``# noqa: F401``, so that ``ruff check --fix``
  on labs/ keeps them (and labs/ in sync).
- In any code cell, the lines from ``# BEGIN SOLUTION`` to ``# END SOLUTION`` (markers
  included, any indentation) become ``# YOUR CODE HERE`` and ``raise NotImplementedError()``
  at the indentation of the ``BEGIN`` marker. An unmatched marker is an error.
- A markdown cell tagged ``solution`` keeps its place but its text becomes
  ``*Your answer here.*``.
- Cells tagged ``solution-only`` are dropped. Every other cell is copied as it is.
- Outputs and execution counts are removed; notebook metadata keeps ``kernelspec``,
  ``language_info`` and ``sysdesign`` (which must name the lab: ``{"lab": "<id>"}``), to
  which ``generated_from`` and ``source_sha256`` (a hash of the generated cells) are added.

A lab whose cells no longer match its recorded ``source_sha256`` was edited by a learner:
it is never overwritten unless ``--force`` is given, and then it is first copied to
``labs/<name>.ipynb.bak-<timestamp>``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import io
import json
import os
import shutil
import sys
import tokenize
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import nbformat
from nbformat import NotebookNode

SOLUTION_TAG = "solution"
SOLUTION_ONLY_TAG = "solution-only"
BEGIN_MARKER = "# BEGIN SOLUTION"
END_MARKER = "# END SOLUTION"
YOUR_CODE = "# YOUR CODE HERE"
YOUR_ANSWER = "*Your answer here.*"
KEPT_METADATA = ("kernelspec", "language_info", "sysdesign")
REGENERATE = "python -m sysdesign.labs"

REPO_ROOT = Path(__file__).resolve().parent.parent


class LabError(Exception):
    """A solution notebook cannot be turned into a lab, or a lab cannot be written safely."""


# --------------------------------------------------------------------------- cells


def _tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _without_tag(cell: NotebookNode, tag: str) -> None:
    metadata = cell.setdefault("metadata", NotebookNode())
    tags = [t for t in metadata.get("tags", []) if t != tag]
    if tags:
        metadata["tags"] = tags
    else:
        metadata.pop("tags", None)


def _source(cell: NotebookNode) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def replace_regions(source: str, where: str = "cell") -> str:
    """Replace every ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` region of ``source``.

    Each region, markers included, becomes ``# YOUR CODE HERE`` and
    ``raise NotImplementedError()`` at the indentation of its ``BEGIN`` marker.
    Raises :class:`LabError` (mentioning ``where``) for a nested or unmatched marker.
    """
    out: list[str] = []
    begin_line: int | None = None
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        stripped = line.strip()
        if stripped == BEGIN_MARKER:
            if begin_line is not None:
                raise LabError(
                    f"{where}: `{BEGIN_MARKER}` on line {number} inside the region opened "
                    f"on line {begin_line} (regions cannot nest)"
                )
            begin_line = number
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{YOUR_CODE}\n{indent}raise NotImplementedError()\n")
        elif stripped == END_MARKER:
            if begin_line is None:
                raise LabError(
                    f"{where}: `{END_MARKER}` on line {number} without a `{BEGIN_MARKER}` before it"
                )
            begin_line = None
        elif begin_line is None:
            out.append(line)
    if begin_line is not None:
        raise LabError(
            f"{where}: `{BEGIN_MARKER}` on line {begin_line} has no `{END_MARKER}` after it"
        )
    text = "".join(out)
    # Keep the cell's own ending: no trailing newline unless the source had one.
    if not source.endswith("\n") and text.endswith("\n"):
        text = text[:-1]
    return text


def _signature_end(
    lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef
) -> tuple[int, int]:
    """(1-based line, column just after) of the ``:`` that ends ``node``'s signature."""
    rest = "".join(lines[node.lineno - 1 :])
    depth = 0
    seen_def = False
    for token in tokenize.generate_tokens(io.StringIO(rest).readline):
        if token.type == tokenize.NAME and token.string == "def":
            seen_def = True
        elif seen_def and token.type == tokenize.OP:
            if token.string in "([{":
                depth += 1
            elif token.string in ")]}":
                depth -= 1
            elif token.string == ":" and depth == 0:
                return node.lineno + token.end[0] - 1, token.end[1]
    raise LabError(f"cannot find the end of the signature of {node.name}()")  # pragma: no cover


def _stub_function(
    source: str, lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef
) -> str:
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    end_line, end_col = _signature_end(lines, node)
    header = lines[first - 1 : end_line - 1] + [lines[end_line - 1][:end_col]]
    parts = ["".join(header).rstrip()]
    body = node.body[0]
    if body.lineno > end_line:
        line = lines[body.lineno - 1]
        indent = line[: len(line) - len(line.lstrip())]
    else:  # `def f(): ...` on one line
        indent = " " * (node.col_offset + 4)
    if (
        isinstance(body, ast.Expr)
        and isinstance(body.value, ast.Constant)
        and isinstance(body.value.value, str)
    ):
        parts.append(indent + ast.get_source_segment(source, body))
    parts.append(f"{indent}{YOUR_CODE}")
    parts.append(f"{indent}raise NotImplementedError({json.dumps(node.name)})")
    return "\n".join(parts)


def _import_source(source: str, node: ast.Import | ast.ImportFrom, used: set[str]) -> str:
    """The import statement's source, with ``# noqa: F401`` on the lines of names the stub
    no longer uses (the learner will; meanwhile ``ruff check --fix`` must not delete them)."""
    lines = ast.get_source_segment(source, node).split("\n")
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        return "\n".join(lines)
    for alias in node.names:
        bound = alias.asname or alias.name.split(".")[0]
        index = getattr(alias, "lineno", node.lineno) - node.lineno
        if alias.name != "*" and bound not in used and "noqa" not in lines[index]:
            lines[index] += "  # noqa: F401"
    return "\n".join(lines)


def stub_cell_source(source: str, where: str = "cell") -> str:
    """The stub for a ``solution`` code cell: imports, then each function without its body."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise LabError(
            f"{where}: a `{SOLUTION_TAG}` cell must be plain Python (no magics); "
            f"it does not parse: {exc.msg} on line {exc.lineno}"
        ) from None
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    functions = [
        _stub_function(source, lines, node)
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    used = {n.id for n in ast.walk(ast.parse("\n\n".join(functions))) if isinstance(n, ast.Name)}
    imports = ""
    previous = None
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            # One blank line where the solution had any, so import groups stay sorted.
            if previous is not None:
                imports += "\n\n" if node.lineno - previous.end_lineno > 1 else "\n"
            imports += _import_source(source, node, used)
            previous = node
    blocks = [imports] if imports else []
    blocks += functions or [f"{YOUR_CODE}\nraise NotImplementedError()"]
    return "\n\n\n".join(blocks)


def cells_sha256(cells: list[NotebookNode]) -> str:
    """A hash of the cells' types and sources (not outputs or metadata).

    Running a lab changes outputs only, so it keeps the hash; editing, adding or
    deleting a cell changes it.
    """
    canonical = [{"cell_type": c.get("cell_type"), "source": _source(c)} for c in cells]
    text = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _lab_cell(cell: NotebookNode, where: str) -> NotebookNode | None:
    tags = _tags(cell)
    for tag in tags:
        if tag.lower().startswith("solution") and tag not in (SOLUTION_TAG, SOLUTION_ONLY_TAG):
            raise LabError(
                f"{where}: unknown tag {tag!r}; did you mean {SOLUTION_TAG!r} or "
                f"{SOLUTION_ONLY_TAG!r}? (refusing to guess, so that no answer leaks into labs/)"
            )
    if SOLUTION_ONLY_TAG in tags:
        return None
    new = copy.deepcopy(cell)
    new.setdefault("metadata", NotebookNode()).pop("execution", None)
    kind = new.get("cell_type")
    if kind == "code":
        source = replace_regions(_source(cell), where)  # also validates the markers
        if SOLUTION_TAG in tags:
            source = stub_cell_source(_source(cell), where)
            _without_tag(new, SOLUTION_TAG)
        new["source"] = source
        new["outputs"] = []
        new["execution_count"] = None
    elif SOLUTION_TAG in tags:
        if kind != "markdown":
            raise LabError(f"{where}: the {SOLUTION_TAG!r} tag is for code and markdown cells")
        new["source"] = YOUR_ANSWER
        new.pop("attachments", None)
        _without_tag(new, SOLUTION_TAG)
    return new


def make_lab(solution_nb: NotebookNode, name: str | None = None) -> NotebookNode:
    """The lab notebook generated from a solution notebook (which is not modified).

    ``name`` is the solution's file name (``01-foo.ipynb``); it goes into error messages
    and into ``metadata.sysdesign.generated_from`` as ``solutions/<name>``. Raises
    :class:`LabError` when the solution has no ``metadata.sysdesign.lab`` or an unmatched
    solution marker (the message names the notebook and the cell, counting from 1).
    """
    label = f"solutions/{name}" if name else "the solution notebook"
    sysdesign_meta = solution_nb.get("metadata", {}).get("sysdesign", {})
    if not isinstance(sysdesign_meta, dict) or not sysdesign_meta.get("lab"):
        raise LabError(
            f'{label}: notebook metadata has no "sysdesign": {{"lab": "<lab id>"}} '
            "(add it in JupyterLab under Property Inspector > Notebook metadata)"
        )
    cells = []
    for number, cell in enumerate(solution_nb.get("cells", []), start=1):
        new = _lab_cell(cell, f"{label}, cell {number}")
        if new is not None:
            cells.append(new)

    metadata = NotebookNode()
    for key in KEPT_METADATA:
        if key in solution_nb.get("metadata", {}):
            metadata[key] = copy.deepcopy(solution_nb["metadata"][key])
    if name:
        metadata["sysdesign"]["generated_from"] = f"solutions/{name}"
    metadata["sysdesign"]["source_sha256"] = cells_sha256(cells)

    lab = NotebookNode(
        cells=cells,
        metadata=metadata,
        nbformat=4,
        nbformat_minor=solution_nb.get("nbformat_minor", 5),
    )
    try:
        nbformat.validate(lab)
    except nbformat.ValidationError as exc:
        raise LabError(f"{label}: the generated lab is not a valid notebook: {exc}") from None
    return lab


def notebook_text(nb: NotebookNode) -> str:
    """Exactly what :func:`nbformat.write` writes for ``nb`` (nbformat 4, sorted keys)."""
    buffer = io.StringIO()
    nbformat.write(nb, buffer, version=4)
    return buffer.getvalue()


# --------------------------------------------------------------------------- files


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _solutions(solutions_dir: Path) -> list[Path]:
    if not solutions_dir.is_dir():
        raise LabError(f"no solutions directory at {_shown(solutions_dir)}")
    return sorted(solutions_dir.glob("*.ipynb"))


def _generated_text(solution: Path) -> str:
    try:
        nb = nbformat.read(solution, as_version=4)
    except Exception as exc:
        raise LabError(f"{_shown(solution)}: cannot read the notebook: {exc}") from None
    return notebook_text(make_lab(nb, solution.name))


def _was_edited(lab: Path) -> bool:
    """True unless ``lab``'s cells still hash to the ``source_sha256`` it was generated with."""
    try:
        nb = nbformat.read(lab, as_version=4)
        recorded = nb.metadata["sysdesign"]["source_sha256"]
    except Exception:
        return True  # unreadable or not generated by us: treat it as the learner's work
    return cells_sha256(nb.cells) != recorded


def _backup(lab: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    backup = lab.with_name(f"{lab.name}.bak-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = lab.with_name(f"{lab.name}.bak-{stamp}-{n}")
    shutil.copy2(lab, backup)
    return backup


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8", newline="\n")
    os.replace(temporary, path)


def generate(
    solutions_dir: Path | str,
    labs_dir: Path | str,
    force: bool = False,
    *,
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write ``labs_dir/<name>`` for every ``solutions_dir/*.ipynb``; return the paths written.

    Labs that are already up to date are not touched. Every solution is converted before
    anything is written, so a broken solution writes nothing. A lab a learner edited is
    not overwritten: the other labs are written, then :class:`LabError` names it; with
    ``force=True`` it is copied to ``<lab>.bak-<timestamp>`` first. Labs without a
    solution are left alone. ``log`` receives one line per action.
    """
    say = log or (lambda message: None)
    solutions_dir, labs_dir = Path(solutions_dir), Path(labs_dir)
    planned = [(labs_dir / s.name, _generated_text(s)) for s in _solutions(solutions_dir)]
    written: list[Path] = []
    refused: list[Path] = []
    for lab, text in planned:
        if lab.exists():
            if lab.read_text(encoding="utf-8") == text:
                continue
            if _was_edited(lab):
                if not force:
                    refused.append(lab)
                    continue
                say(f"backed up edited {_shown(lab)} to {_shown(_backup(lab))}")
        _write(lab, text)
        written.append(lab)
        say(f"wrote {_shown(lab)}")
    names = {lab.name for lab, _ in planned}
    for orphan in sorted(labs_dir.glob("*.ipynb")) if labs_dir.is_dir() else []:
        if orphan.name not in names:
            say(
                f"warning: {_shown(orphan)} has no {_shown(solutions_dir / orphan.name)}; "
                "left alone (delete it if it is obsolete)"
            )
    if refused:
        listing = "\n".join(f"  {_shown(lab)}" for lab in refused)
        raise LabError(
            "refusing to overwrite lab(s) edited since they were generated (their cells no "
            f"longer match metadata.sysdesign.source_sha256):\n{listing}\n"
            "Save that work elsewhere, or run with --force to back each one up to "
            "<lab>.bak-<timestamp> and regenerate it."
        )
    return written


def out_of_sync(solutions_dir: Path | str, labs_dir: Path | str) -> list[str]:
    """What differs between ``labs_dir`` and what :func:`generate` would write (empty: in sync).

    Lists missing labs, labs whose bytes differ, and labs without a solution.
    """
    solutions_dir, labs_dir = Path(solutions_dir), Path(labs_dir)
    problems = []
    names = set()
    for solution in _solutions(solutions_dir):
        names.add(solution.name)
        lab = labs_dir / solution.name
        text = _generated_text(solution)
        if not lab.exists():
            problems.append(f"missing: {_shown(lab)} (from {_shown(solution)})")
        elif lab.read_text(encoding="utf-8") != text:
            problems.append(f"differs: {_shown(lab)} is not what {_shown(solution)} generates")
    for lab in sorted(labs_dir.glob("*.ipynb")) if labs_dir.is_dir() else []:
        if lab.name not in names:
            problems.append(f"no solution: {_shown(lab)} has no {_shown(solutions_dir / lab.name)}")
    return problems


# --------------------------------------------------------------------------- command line


def _default_root() -> Path:
    for root in (REPO_ROOT, Path.cwd()):
        if (root / "solutions").is_dir():
            return root
    return REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    """``python -m sysdesign.labs``: generate labs/ from solutions/, or ``--check`` them."""
    parser = argparse.ArgumentParser(
        prog="python -m sysdesign.labs",
        description="Generate the learners' labs/ notebooks from solutions/.",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if labs/ is out of date"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="overwrite labs a learner edited, after copying each to <lab>.bak-<timestamp>",
    )
    parser.add_argument("--solutions", type=Path, help="solution notebooks (default: solutions/)")
    parser.add_argument("--labs", type=Path, help="generated notebooks (default: labs/)")
    args = parser.parse_args(argv)
    root = _default_root()
    solutions_dir = args.solutions or root / "solutions"
    labs_dir = args.labs or root / "labs"
    try:
        if args.check:
            problems = out_of_sync(solutions_dir, labs_dir)
            if problems:
                print(f"labs/ is out of date: run `{REGENERATE}`", file=sys.stderr)
                for problem in problems:
                    print(f"  {problem}", file=sys.stderr)
                return 1
            print("labs/ is in sync with solutions/")
            return 0
        written = generate(solutions_dir, labs_dir, force=args.force, log=print)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not written:
        print("labs/ is in sync with solutions/ (nothing to write)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
