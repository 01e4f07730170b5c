"""labs/ is generated from solutions/ (``python -m sysdesign.labs``), and both work.

The first half tests the generator on small notebooks built here; the second half holds
the real repository: labs/ is in sync, every solution passes all of its lab's checks,
and every generated lab runs to the end with every check reporting "not yet".
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

import sysdesign
from sysdesign.grading import CHECK_MIMETYPE, get_lab
from sysdesign.labs import (
    LabError,
    cells_sha256,
    generate,
    main,
    make_lab,
    notebook_text,
    out_of_sync,
)

REPO = Path(sysdesign.__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
LABS = REPO / "labs"
SOLUTION_NOTEBOOKS = sorted(SOLUTIONS.glob("*.ipynb"))
NAME = "01-test-lab.ipynb"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


# --------------------------------------------------------------------------- helpers


def code(source: str, *tags: str, outputs=None, execution_count=None):
    metadata = {"tags": list(tags)} if tags else {}
    return new_code_cell(
        source, metadata=metadata, outputs=outputs or [], execution_count=execution_count
    )


def markdown(source: str, *tags: str):
    return new_markdown_cell(source, metadata={"tags": list(tags)} if tags else {})


def notebook(*cells, lab: str | None = "capacity-estimation", **metadata):
    nb = new_notebook(cells=list(cells))
    nb.metadata.update(
        kernelspec=KERNELSPEC, language_info={"name": "python", "version": "3.11"}, **metadata
    )
    if lab is not None:
        nb.metadata["sysdesign"] = {"lab": lab}
    return nb


AVERAGE_QPS = '''\
def average_qps(daily_active_users, requests_per_user):
    """Average requests per second over a day."""
    return daily_active_users * requests_per_user / 86_400
'''
AVERAGE_QPS_STUB = '''\
def average_qps(daily_active_users, requests_per_user):
    """Average requests per second over a day."""
    # YOUR CODE HERE
    raise NotImplementedError("average_qps")'''


def capacity_solution():
    """A small solution notebook for the capacity lab, shaped like the real ones."""
    return notebook(
        markdown("# Capacity estimation\n\nHow many requests per second is a million users?"),
        code("import sysdesign as sd; sd.setup()\nfrom sysdesign.capacity.lab import lab"),
        code(AVERAGE_QPS, "solution"),
        code('lab.check("average_qps", average_qps)'),
    )


def write_solutions(root: Path, *notebooks, names=None) -> tuple[Path, Path]:
    """Write notebooks into ``root/solutions``; return (solutions dir, labs dir)."""
    solutions = root / "solutions"
    solutions.mkdir(parents=True, exist_ok=True)
    for nb, name in zip(notebooks, names or [NAME], strict=True):
        nbformat.write(nb, solutions / name)
    return solutions, root / "labs"


def only_cell(nb, index: int = 0) -> str:
    return make_lab(nb).cells[index].source


def run_labs(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sysdesign.labs", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def execute(nb, cwd: Path):
    """Run ``nb`` top to bottom in a fresh python3 kernel in ``cwd``; fail on any error."""
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(cwd)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"the notebook stopped with an error:\n{exc}", pytrace=False)
    return nb


def check_results(nb) -> list[dict]:
    """Every check result (``CheckResult.to_dict()``) shown in the notebook's outputs."""
    return [
        output["data"][CHECK_MIMETYPE]
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.get("output_type") in ("display_data", "execute_result")
        and CHECK_MIMETYPE in output.get("data", {})
    ]


def assert_solution_passes(solution_nb, cwd: Path, where: str) -> None:
    lab_id = solution_nb.metadata["sysdesign"]["lab"]
    results = check_results(execute(solution_nb, cwd))
    assert results, f"{where} shows no check results: add `lab.check(...)` cells"
    failed = [f"{r['name']}: {r['message']}" for r in results if not r["passed"]]
    assert not failed, f"{where}: checks that do not pass:\n" + "\n".join(failed)
    assert {r["lab"] for r in results} == {lab_id}, f"{where} checks another lab than {lab_id!r}"
    missing = set(get_lab(lab_id).checks) - {r["name"] for r in results}
    assert not missing, f"{where} never runs these checks of {lab_id!r}: {sorted(missing)}"


def assert_lab_runs_and_fails_every_check(lab_nb, cwd: Path, where: str) -> None:
    results = check_results(execute(lab_nb, cwd))
    assert results, f"the lab generated from {where} shows no check results"
    vacuous = [r["name"] for r in results if r["passed"]]
    assert not vacuous, (
        f"the lab generated from {where} passes these checks before the learner wrote "
        f"anything: {vacuous}"
    )


# --------------------------------------------------------------------------- make_lab


def test_solution_cell_becomes_a_stub_that_raises():
    lab = make_lab(capacity_solution(), NAME)
    stub = lab.cells[2]
    assert stub.source == AVERAGE_QPS_STUB
    assert "tags" not in stub.metadata
    assert "86_400" not in notebook_text(lab)

    namespace: dict = {}
    exec(stub.source, namespace)  # defining the stub itself must not raise
    average_qps = namespace["average_qps"]
    assert average_qps.__doc__ == "Average requests per second over a day."
    with pytest.raises(NotImplementedError, match="average_qps"):
        average_qps(1_000_000, 10)


def test_stub_keeps_imports_decorators_signatures_and_docstrings_only():
    source = '''\
import math
from functools import cache

RATE = 86_400  # dropped: not a function


@cache  # keep the decorator
def per_second(
    per_day: float,
    seconds: int = 86_400,
) -> float:  # the answer is below
    """Per day to per second.

    Divide, of course.
    """
    # a comment that gives the answer away
    return per_day / seconds


def ceil(x): return math.ceil(x)


async def fetch(url, *, retries=(1, 2, {"a": 3})):
    return url


print(per_second(RATE))
'''
    expected = '''\
import math  # noqa: F401
from functools import cache


@cache  # keep the decorator
def per_second(
    per_day: float,
    seconds: int = 86_400,
) -> float:
    """Per day to per second.

    Divide, of course.
    """
    # YOUR CODE HERE
    raise NotImplementedError("per_second")


def ceil(x):
    # YOUR CODE HERE
    raise NotImplementedError("ceil")


async def fetch(url, *, retries=(1, 2, {"a": 3})):
    # YOUR CODE HERE
    raise NotImplementedError("fetch")'''
    stub = only_cell(notebook(code(source, "solution")))
    assert stub == expected
    namespace: dict = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="ceil"):
        namespace["ceil"](1.5)


def test_stub_is_ruff_clean_and_keeps_import_groups(tmp_path):
    """labs/ is linted (``make lint``) and fixed (``make format``) like the solutions."""
    pytest.importorskip("ruff")
    source = '''\
from __future__ import annotations

import math
from functools import (
    cache,
    partial,
)

import numpy as np


@cache
def servers(peak_qps: float, server_qps: float = 1e4) -> int:
    """Round up."""
    return max(1, math.ceil(np.float64(peak_qps) / server_qps))
'''
    stub = only_cell(notebook(code(source, "solution")))
    assert stub.startswith(
        "from __future__ import annotations\n\nimport math  # noqa: F401\n"
        "from functools import (\n    cache,\n    partial,  # noqa: F401\n)\n\n"
        "import numpy as np  # noqa: F401\n\n\n@cache\n"
    )
    (tmp_path / "stub.py").write_text(stub + "\n")
    config = ("--config", str(REPO / "pyproject.toml"))
    for command in (["check", *config], ["format", "--check", *config]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "stub.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_solution_cell_without_a_function_becomes_a_bare_stub():
    stub = only_cell(notebook(code("answer = 6 * 7\nanswer", "solution")))
    assert stub == "# YOUR CODE HERE\nraise NotImplementedError()"
    with pytest.raises(NotImplementedError):
        exec(stub, {})


def test_solution_regions_become_stubs_at_their_indentation():
    source = """\
def servers(peak_qps, server_qps):
    if server_qps <= 0:
        raise ValueError("server_qps must be positive")
    # BEGIN SOLUTION
    import math
    return max(1, math.ceil(peak_qps / server_qps))
    # END SOLUTION


budget = 10
  # BEGIN SOLUTION
budget = 20
  # END SOLUTION
print(budget)"""
    expected = """\
def servers(peak_qps, server_qps):
    if server_qps <= 0:
        raise ValueError("server_qps must be positive")
    # YOUR CODE HERE
    raise NotImplementedError()


budget = 10
  # YOUR CODE HERE
  raise NotImplementedError()
print(budget)"""
    lab = make_lab(notebook(code(source)))
    assert lab.cells[0].source == expected
    assert "SOLUTION" not in notebook_text(lab)


def test_regions_in_a_function_leave_a_cell_that_runs():
    source = "def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION\n"
    stub = only_cell(notebook(code(source)))
    namespace: dict = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError):
        namespace["double"](2)


def test_markdown_answer_is_blanked_and_keeps_its_place():
    nb = notebook(
        markdown("Question: why a cache?"),
        markdown("Because reads outnumber writes 100:1.", "solution", "keep-me"),
        markdown("Next."),
    )
    lab = make_lab(nb)
    assert [c.source for c in lab.cells] == [
        "Question: why a cache?",
        "*Your answer here.*",
        "Next.",
    ]
    assert lab.cells[1].cell_type == "markdown"
    assert lab.cells[1].metadata == {"tags": ["keep-me"]}
    assert "100:1" not in notebook_text(lab)


def test_solution_only_cells_are_dropped():
    nb = notebook(
        code("x = 1"),
        code("assert x == 1  # author's own test", "solution-only"),
        markdown("Teacher's notes", "solution-only"),
        code("x"),
    )
    assert [c.source for c in make_lab(nb).cells] == ["x = 1", "x"]


def test_outputs_are_stripped_and_other_cells_copied_verbatim():
    check = 'lab.check("average_qps", average_qps)'
    nb = notebook(
        code(
            check,
            outputs=[new_output("display_data", data={"text/plain": "✔ average_qps: passed"})],
            execution_count=7,
        ),
        code("print('hi')", outputs=[new_output("stream", text="hi\n")], execution_count=8),
    )
    nb.cells[0].metadata["collapsed"] = False
    lab = make_lab(nb)
    assert [c.source for c in lab.cells] == [check, "print('hi')"]
    assert all(c.outputs == [] and c.execution_count is None for c in lab.cells)
    assert lab.cells[0].metadata == {"collapsed": False}
    assert [c.id for c in lab.cells] == [c.id for c in nb.cells]


def test_notebook_metadata_is_kept_and_records_the_source():
    nb = notebook(code("x = 1"), widgets={"state": {}}, toc={"numbered": True})
    lab = make_lab(nb, NAME)
    assert set(lab.metadata) == {"kernelspec", "language_info", "sysdesign"}
    assert lab.metadata.kernelspec == KERNELSPEC
    assert lab.metadata.sysdesign == {
        "lab": "capacity-estimation",
        "generated_from": f"solutions/{NAME}",
        "source_sha256": cells_sha256(lab.cells),
    }
    assert "generated_from" not in nb.metadata.sysdesign  # the solution is not modified


def test_missing_lab_id_is_a_clear_error():
    with pytest.raises(LabError, match=r'solutions/01-test-lab.ipynb.*"sysdesign": \{"lab"'):
        make_lab(notebook(code("x = 1"), lab=None), NAME)


@pytest.mark.parametrize(
    "source, problem",
    [
        ("x = 1\n# BEGIN SOLUTION\nx = 2\n", "on line 2 has no `# END SOLUTION`"),
        ("x = 1\n    # END SOLUTION\n", "on line 2 without a `# BEGIN SOLUTION`"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "regions cannot nest"),
    ],
)
def test_unmatched_marker_names_notebook_and_cell(tmp_path, source, problem):
    solutions, labs = write_solutions(tmp_path, notebook(markdown("intro"), code(source)))
    with pytest.raises(LabError, match=r"solutions/01-test-lab\.ipynb, cell 2") as info:
        generate(solutions, labs)
    assert problem in str(info.value)
    assert not labs.exists()  # nothing is written when a solution is broken


def test_misspelt_solution_tag_is_an_error_not_a_leak():
    with pytest.raises(LabError, match="unknown tag 'solutions'"):
        make_lab(notebook(code(AVERAGE_QPS, "solutions")))


# --------------------------------------------------------------------------- generate


def test_generate_writes_labs_reproducibly(tmp_path):
    solutions, labs = write_solutions(tmp_path, capacity_solution())
    assert generate(solutions, labs) == [labs / NAME]
    first = (labs / NAME).read_bytes()
    assert first.endswith(b"}\n")
    expected = notebook_text(make_lab(nbformat.read(solutions / NAME, as_version=4), NAME))
    assert first.decode() == expected

    assert generate(solutions, labs) == []  # up to date: nothing rewritten
    (labs / NAME).unlink()
    generate(solutions, labs)
    assert (labs / NAME).read_bytes() == first

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(solutions, elsewhere / "solutions")
    generate(elsewhere / "solutions", elsewhere / "labs")
    assert (elsewhere / "labs" / NAME).read_bytes() == first


def test_generated_lab_is_regenerated_when_only_run(tmp_path):
    solutions, labs = write_solutions(tmp_path, capacity_solution())
    generate(solutions, labs)
    ran = nbformat.read(labs / NAME, as_version=4)  # a learner ran it: outputs, no edits
    ran.cells[3].outputs = [new_output("display_data", data={"text/plain": "✘ not yet"})]
    nbformat.write(ran, labs / NAME)
    solution = capacity_solution()
    solution.cells[0].source += "\n\nA better introduction."
    nbformat.write(solution, solutions / NAME)

    assert generate(solutions, labs) == [labs / NAME]
    assert "A better introduction." in (labs / NAME).read_text()
    assert list(labs.glob("*.bak-*")) == []


def test_edited_lab_is_never_overwritten_without_force(tmp_path):
    solutions, labs = write_solutions(tmp_path, capacity_solution())
    generate(solutions, labs)
    generated = (labs / NAME).read_text()
    edited = nbformat.read(labs / NAME, as_version=4)
    edited.cells[2].source = edited.cells[2].source.replace(
        '# YOUR CODE HERE\n    raise NotImplementedError("average_qps")',
        "return daily_active_users * requests_per_user / 86_400  # my answer",
    )
    nbformat.write(edited, labs / NAME)
    learner_work = (labs / NAME).read_bytes()

    with pytest.raises(LabError, match=r"refusing to overwrite.*\n.*01-test-lab\.ipynb"):
        generate(solutions, labs)
    assert (labs / NAME).read_bytes() == learner_work

    log: list[str] = []
    assert generate(solutions, labs, force=True, log=log.append) == [labs / NAME]
    [backup] = labs.glob(f"{NAME}.bak-*")
    assert backup.read_bytes() == learner_work
    assert (labs / NAME).read_text() == generated
    assert any(backup.name in line for line in log)


def test_hand_written_lab_without_a_hash_is_the_learners(tmp_path):
    solutions, labs = write_solutions(tmp_path, capacity_solution())
    labs.mkdir()
    nbformat.write(notebook(code("my own notes")), labs / NAME)
    with pytest.raises(LabError, match="refusing to overwrite"):
        generate(solutions, labs)
    assert "my own notes" in (labs / NAME).read_text()


def test_out_of_sync_lists_missing_differing_and_orphan_labs(tmp_path):
    solutions, labs = write_solutions(
        tmp_path, capacity_solution(), capacity_solution(), names=["a.ipynb", "b.ipynb"]
    )
    assert [p.split(":")[0] for p in out_of_sync(solutions, labs)] == ["missing", "missing"]
    generate(solutions, labs)
    assert out_of_sync(solutions, labs) == []

    stale = capacity_solution()
    stale.cells.append(markdown("new"))
    nbformat.write(stale, solutions / "b.ipynb")
    nbformat.write(capacity_solution(), labs / "c.ipynb")
    problems = out_of_sync(solutions, labs)
    assert len(problems) == 2
    assert problems[0].startswith("differs:") and "b.ipynb" in problems[0]
    assert problems[1].startswith("no solution:") and "c.ipynb" in problems[1]


# --------------------------------------------------------------------------- command line


def test_check_exit_codes(tmp_path):
    solutions, labs = write_solutions(tmp_path, capacity_solution())
    dirs = ("--solutions", str(solutions), "--labs", str(labs))

    missing = run_labs("--check", *dirs, cwd=tmp_path)
    assert missing.returncode == 1
    assert "labs/ is out of date: run `python -m sysdesign.labs`" in missing.stderr
    assert f"missing: labs/{NAME}" in missing.stderr
    assert not labs.exists()  # --check writes nothing

    generate(solutions, labs)
    in_sync = run_labs("--check", *dirs, cwd=tmp_path)
    assert in_sync.returncode == 0, in_sync.stderr
    assert "labs/ is in sync with solutions/" in in_sync.stdout

    solution = capacity_solution()
    solution.cells.append(markdown("one more thing"))
    nbformat.write(solution, solutions / NAME)
    stale = run_labs("--check", *dirs, cwd=tmp_path)
    assert stale.returncode == 1
    assert f"differs: labs/{NAME}" in stale.stderr


def test_command_line_writes_refuses_then_forces_with_a_backup(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    solutions, labs = write_solutions(tmp_path, capacity_solution())
    dirs = ["--solutions", str(solutions), "--labs", str(labs)]
    assert main(dirs) == 0
    assert f"wrote labs/{NAME}" in capsys.readouterr().out
    assert main(dirs) == 0
    assert "in sync" in capsys.readouterr().out

    edited = nbformat.read(labs / NAME, as_version=4)
    edited.cells.append(code("# my scratch work"))
    nbformat.write(edited, labs / NAME)
    solution = capacity_solution()
    solution.cells.append(markdown("one more thing"))
    nbformat.write(solution, solutions / NAME)

    assert main(dirs) == 1
    refused = capsys.readouterr()
    assert "refusing to overwrite" in refused.err and "--force" in refused.err
    assert "my scratch work" in (labs / NAME).read_text()

    assert main(["--force", *dirs]) == 0
    forced = capsys.readouterr()
    [backup] = labs.glob(f"{NAME}.bak-*")
    assert f"backed up edited labs/{NAME} to labs/{backup.name}" in forced.out
    assert "my scratch work" in backup.read_text()
    assert "my scratch work" not in (labs / NAME).read_text()
    assert "one more thing" in (labs / NAME).read_text()


def test_command_line_reports_a_broken_solution(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    solutions, labs = write_solutions(tmp_path, notebook(code("# BEGIN SOLUTION\nx = 1")))
    for extra in ([], ["--check"]):
        assert main([*extra, "--solutions", str(solutions), "--labs", str(labs)]) == 1
        assert f"error: solutions/{NAME}, cell 1" in capsys.readouterr().err
    assert not labs.exists()


# --------------------------------------------------------------------------- executed


@pytest.mark.slow
def test_capacity_example_solution_passes_and_its_lab_fails(tmp_path):
    """The whole pipeline on a small capacity notebook (independent of the real ones)."""
    solution = capacity_solution()
    solution_results = check_results(execute(solution, tmp_path))
    assert [(r["name"], r["passed"]) for r in solution_results] == [("average_qps", True)]
    lab_results = check_results(execute(make_lab(capacity_solution(), NAME), tmp_path))
    assert [(r["name"], r["passed"]) for r in lab_results] == [("average_qps", False)]
    assert "not implemented yet" in lab_results[0]["message"]


# --------------------------------------------------------------------------- the repository


def test_repository_has_solution_notebooks():
    assert SOLUTION_NOTEBOOKS, f"no solution notebooks in {SOLUTIONS}"


def test_labs_are_in_sync_with_solutions():
    problems = out_of_sync(SOLUTIONS, LABS)
    if problems:
        pytest.fail(
            "labs/ is out of date: run `python -m sysdesign.labs`\n" + "\n".join(problems),
            pytrace=False,
        )


@pytest.mark.slow
@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.name)
def test_solution_notebook_passes_every_check(path):
    solution = nbformat.read(path, as_version=4)
    assert_solution_passes(solution, path.parent, f"solutions/{path.name}")


@pytest.mark.slow
@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.name)
def test_generated_lab_runs_to_the_end_and_no_check_passes(path):
    lab = make_lab(nbformat.read(path, as_version=4), path.name)
    cwd = LABS if LABS.is_dir() else path.parent
    assert_lab_runs_and_fails_every_check(lab, cwd, f"solutions/{path.name}")
