"""The teacher's grader (``python -m sysdesign.grade``) on good and broken submissions.

Most cases are graded by ONE command-line run (``--jobs 2``), as a teacher would grade a
class, and the tests below read its JSON and CSV: each kernel start costs about two
seconds, so one run per case would make this file slow. Every submission is a notebook
built here for the capacity estimation lab; the reference estimator
(``sysdesign.capacity.estimate``) stands in for a learner who got everything right.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from sysdesign import grade as grader

pytestmark = pytest.mark.slow

LAB = "capacity-estimation"
NAMES = [
    "average_qps",
    "split_reads_writes",
    "storage_needed",
    "servers_needed",
    "estimate_capacity",
]


def imports(*names: str) -> str:
    return f"from sysdesign.capacity.estimate import {', '.join(names)}"


def all_but(name: str) -> str:
    return imports(*(n for n in NAMES if n != name))


IMPORT_ALL = imports(*NAMES)
CHECK_CELLS = [f"from sysdesign.capacity.lab import lab\nlab.check({n!r}, {n})" for n in NAMES]

# name -> code cells (after a markdown title, so the first code cell is "cell 2")
SUBMISSIONS: dict[str, list[str]] = {
    "perfect": [IMPORT_ALL, *CHECK_CELLS],
    "deleted_checks": [IMPORT_ALL],
    "syntax_error": [
        all_but("average_qps"),
        "def average_qps(daily_active_users, requests_per_user)\n"
        "    return daily_active_users * requests_per_user / 86_400",
    ],
    "exception": ["1/0", IMPORT_ALL],
    "infinite_loop": [
        all_but("servers_needed"),
        "while True:\n    pass\nfrom sysdesign.capacity.estimate import servers_needed",
    ],
    "uninterruptible": [
        IMPORT_ALL,
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
    ],
    "sys_exit": ["import sys; sys.exit(1)", IMPORT_ALL],
    "os_exit": [IMPORT_ALL, "import os; os._exit(1)"],
    "dies_in_a_check": [
        all_but("storage_needed"),
        "def storage_needed(*args, **kwargs):\n    import os\n    os._exit(3)",
    ],
    "huge_allocation": [IMPORT_ALL, "x = bytearray(10**11)"],
    "runaway_list": [IMPORT_ALL, "chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))"],
    "renamed": [
        all_but("average_qps"),
        "def avg_qps(daily_active_users, requests_per_user):\n"
        "    return daily_active_users * requests_per_user / 86_400",
    ],
    "partial": [
        all_but("servers_needed"),
        "import math\n\ndef servers_needed(peak_qps, server_qps):\n"
        "    return float(max(1, math.ceil(peak_qps / server_qps)))",
    ],
}
NO_METADATA = [IMPORT_ALL]
# The course's own capacity lab: the solution scores everything, the blank lab nothing.
REPO = Path(__file__).resolve().parent.parent
REPO_NOTEBOOKS = {
    "repo_solution": REPO / "solutions" / "01-capacity-estimation-lab.ipynb",
    "repo_lab": REPO / "labs" / "01-capacity-estimation-lab.ipynb",
}
CELL_TIMEOUT = 3
MEMORY_MB = 512  # an idle kernel needs ~220 MB of address space, ~300 MB with numpy

# name -> (score, error, cell_errors, checks that fail); error None means "no error"
EXPECTED: dict[str, tuple[int, str | None, list[str], set[str]]] = {
    "perfect": (5, None, [], set()),
    "deleted_checks": (5, None, [], set()),
    "syntax_error": (
        4,
        None,
        ["cell 3: `def average_qps(daily_active_users, req…` raised SyntaxError: expected ':'"],
        {"average_qps"},
    ),
    "exception": (5, None, ["cell 2: `1/0` raised ZeroDivisionError: division by zero"], set()),
    "infinite_loop": (
        4,
        f"cell 3: `while True:` did not finish within {CELL_TIMEOUT} s",
        [],
        {"servers_needed"},
    ),
    "uninterruptible": (
        0,
        f"cell 3: `import signal` did not finish within {CELL_TIMEOUT} s "
        "and could not be interrupted",
        [],
        set(NAMES),
    ),
    "sys_exit": (5, None, ["cell 2: `import sys; sys.exit(1)` raised SystemExit: 1"], set()),
    "os_exit": (
        0,
        "the kernel died while running cell 3: `import os; os._exit(1)` "
        "(it exited with status 1: os._exit?)",
        [],
        set(NAMES),
    ),
    "dies_in_a_check": (
        0,
        "the kernel died while running the checks (it exited with status 3: os._exit?)",
        [],
        set(NAMES),
    ),
    "huge_allocation": (
        5,
        None,
        [
            "cell 3: `x = bytearray(10**11)` raised MemoryError "
            f"(the memory limit is {MEMORY_MB} MB)"
        ],
        set(),
    ),
    "runaway_list": (
        5,
        None,
        [f"cell 3: `chunks = []` raised MemoryError (the memory limit is {MEMORY_MB} MB)"],
        set(),
    ),
    "renamed": (4, None, [], {"average_qps"}),
    "partial": (4, None, [], {"servers_needed"}),
}


def write_notebook(path: Path, cells: list[str], lab: str | None = LAB) -> Path:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# A submission")]
        + [nbformat.v4.new_code_cell(source) for source in cells]
    )
    if lab is not None:
        nb.metadata["sysdesign"] = {"lab": lab}
    nbformat.write(nb, path)
    return path


def leftover_processes(marker: str) -> list[str]:
    """Command lines of live processes that mention ``marker`` (argv, cwd or environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # a zombie has exited; it only waits for its parent to reap it
            cmdline = (entry / "cmdline").read_bytes()
            if marker.encode() in cmdline + (entry / "environ").read_bytes() or os.readlink(
                entry / "cwd"
            ).startswith(marker):
                found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


def snapshot(paths: list[Path]) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths if p.exists()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade every submission above (plus a missing file, a non-notebook, a notebook
    without lab metadata and one for an unknown lab) in one CLI run."""
    root = tmp_path_factory.mktemp("submissions")
    scratch = tmp_path_factory.mktemp("grader-tmp")
    paths = [write_notebook(root / f"{name}.ipynb", cells) for name, cells in SUBMISSIONS.items()]
    paths.append(write_notebook(root / "no_metadata.ipynb", NO_METADATA, lab=None))
    paths.append(write_notebook(root / "unknown_lab.ipynb", NO_METADATA, lab="no-such-lab"))
    (root / "not_json.ipynb").write_text("these are my answers: 42\n")
    paths.append(root / "not_json.ipynb")
    paths.append(root / "missing.ipynb")
    before = snapshot(paths)
    csv_file = root / "grades.csv"
    env = dict(os.environ, TMPDIR=str(scratch))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "sysdesign.grade", *(p.name for p in paths)]
        + ["--json", "--csv", str(csv_file), "--jobs", "2", "--timeout", "60"]
        + ["--cell-timeout", str(CELL_TIMEOUT), "--memory", str(MEMORY_MB)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.monotonic() - started
    results = json.loads(proc.stdout) if proc.returncode == 0 else None
    rows = []
    if csv_file.exists():
        with open(csv_file, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    return {
        "proc": proc,
        "elapsed": elapsed,
        "results": {Path(r["notebook"]).stem: r for r in results or []},
        "order": [r["notebook"] for r in results or []],
        "rows": {Path(r["notebook"]).stem: r for r in rows},
        "header": list(rows[0]) if rows else [],
        "paths": paths,
        "before": before,
        "scratch": scratch,
    }


def test_cli_completes_with_exit_status_0(graded):
    proc = graded["proc"]
    assert proc.returncode == 0, proc.stderr
    names = [p.name for p in graded["paths"]]
    assert graded["order"] == names  # the order given, each path as given


@pytest.mark.parametrize("name", list(EXPECTED))
def test_scores_and_errors(graded, name):
    result = graded["results"][name]
    score, error, cell_errors, failing = EXPECTED[name]
    assert result["lab"] == LAB
    assert result["max_score"] == 5
    assert (result["score"], result["error"]) == (score, error), result
    assert len(result["cell_errors"]) == len(cell_errors), result["cell_errors"]
    for got, want in zip(result["cell_errors"], cell_errors, strict=True):
        assert got.startswith(want), result["cell_errors"]
    if result["checks"]:
        assert [c["name"] for c in result["checks"]] == NAMES
        assert {c["name"] for c in result["checks"] if not c["passed"]} == failing
        assert all(set(c) == {"name", "passed", "message", "points"} for c in result["checks"])
    else:  # the checks could not run: the kernel died or got stuck
        assert failing == set(NAMES) and score == 0


def test_messages_say_what_went_wrong(graded):
    checks = {
        name: {c["name"]: c for c in graded["results"][name]["checks"]}
        for name in ("renamed", "partial", "syntax_error")
    }
    renamed = checks["renamed"]["average_qps"]["message"]
    assert renamed.startswith("`average_qps` is not defined") and "rename" in renamed
    partial = checks["partial"]["servers_needed"]["message"]
    assert partial.splitlines()[0] == "expected a whole number of servers, got float"
    assert "not defined" in checks["syntax_error"]["average_qps"]["message"]


def test_submissions_that_cannot_be_graded(graded):
    results = graded["results"]
    assert results["missing"]["error"] == "file not found: missing.ipynb"
    assert results["not_json"]["error"].startswith("not a notebook: invalid JSON")
    assert results["no_metadata"]["error"] == grader.NO_LAB
    assert results["no_metadata"]["lab"] is None
    assert results["unknown_lab"]["error"].startswith("no lab with id 'no-such-lab'")
    for name in ("missing", "not_json", "no_metadata", "unknown_lab"):
        assert (results[name]["score"], results[name]["max_score"]) == (0, 0)
        assert results[name]["checks"] == []


def test_the_course_lab_notebooks():
    """With the default limits (their first cell imports plotly: no 3 s cell limit here)."""
    if not all(p.exists() for p in REPO_NOTEBOOKS.values()):
        pytest.skip("the capacity lab notebooks are not in this checkout")
    solution, blank = grader.grade(REPO_NOTEBOOKS.values(), jobs=2)
    assert (solution["lab"], solution["score"], solution["max_score"]) == (LAB, 5, 5)
    assert (blank["lab"], blank["score"], blank["max_score"]) == (LAB, 0, 5)
    assert solution["error"] is None and blank["error"] is None
    assert all(c["message"].startswith("not implemented yet") for c in blank["checks"])


def test_csv_has_one_row_per_submission_and_a_column_per_check(graded):
    assert graded["header"] == ["notebook", "lab", "score", "max_score", "error", *NAMES]
    rows = graded["rows"]
    assert set(rows) == {p.stem for p in graded["paths"]}
    assert [rows["perfect"][n] for n in NAMES] == ["1"] * 5
    assert [rows["partial"][n] for n in NAMES] == ["1", "1", "1", "0", "1"]
    assert [rows["os_exit"][n] for n in NAMES] == ["0"] * 5  # the checks did not run
    assert [rows["missing"][n] for n in NAMES] == [""] * 5  # no lab: no checks
    assert rows["os_exit"]["error"].startswith("the kernel died while running cell 3")
    assert (rows["partial"]["score"], rows["partial"]["max_score"]) == ("4", "5")


def test_original_notebooks_are_not_modified(graded):
    assert snapshot(graded["paths"]) == graded["before"]
    assert not any(
        p.name.startswith("sysdesign-grade-") for p in graded["paths"][0].parent.iterdir()
    )


def test_no_process_or_temporary_directory_is_left_behind(graded):
    scratch = str(graded["scratch"])
    assert leftover_processes(scratch) == []
    assert list(graded["scratch"].iterdir()) == []  # every temporary copy was removed


def test_the_run_is_fast_enough(graded):
    assert graded["elapsed"] < 150, graded["elapsed"]


def test_table_shows_scores_errors_and_checks(graded):
    results = [graded["results"][n] for n in ("partial", "os_exit", "exception")]
    table = grader.format_table(results)
    lines = table.splitlines()
    assert lines[0].split() == ["partial.ipynb", "4/5"]
    assert "    ✘ servers_needed: expected a whole number of servers, got float" in lines
    assert "    ✔ average_qps: 4 cases" in lines
    assert any(line.startswith("os_exit.ipynb") and "the kernel died" in line for line in lines)
    assert "    ! cell 2: `1/0` raised ZeroDivisionError: division by zero" in lines


def test_lab_option_overrides_missing_metadata(tmp_path):
    path = write_notebook(tmp_path / "plain.ipynb", NO_METADATA, lab=None)
    result = grader.grade_notebook(path, lab=LAB, timeout=60)
    assert (result["lab"], result["score"], result["max_score"], result["error"]) == (
        LAB,
        5,
        5,
        None,
    )
    assert result["notebook"] == str(path)


def test_overall_timeout_kills_worker_kernel_and_children(tmp_path, monkeypatch):
    """A cell limit longer than the whole limit: the grader must kill everything itself,
    including a process the submission started in the background."""
    scratch = tmp_path / "grader-tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    path = write_notebook(
        tmp_path / "slow.ipynb",
        [
            IMPORT_ALL,
            "import subprocess\nchild = subprocess.Popen(['sleep', '300'])",
            "while True:\n    pass",
        ],
    )
    before = snapshot([path])
    started = time.monotonic()
    result = grader.grade_notebook(path, timeout=8, cell_timeout=60)
    assert time.monotonic() - started < 20
    assert result["score"] == 0 and result["checks"] == []
    assert (
        result["error"]
        == "grading did not finish within 8 s (it was running cell 4: `while True:`)"
    )
    assert leftover_processes(str(scratch)) == []
    assert list(scratch.iterdir()) == []
    assert snapshot([path]) == before


@pytest.mark.parametrize(
    "args",
    [[], ["x.ipynb", "--jobs", "0"], ["x.ipynb", "--memory", "lots"], ["x.ipynb", "--lab", "nope"]],
)
def test_usage_errors_exit_with_status_2(args, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sysdesign.grade", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "usage:" in proc.stderr


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_stopping_the_grader_stops_its_kernels(tmp_path, how):
    """``kill`` (SIGTERM) makes the grader stop its workers and kernels and exit with 130;
    after ``kill -9`` the workers notice that their grader is gone and stop on their own."""
    scratch = tmp_path / "grader-tmp"
    scratch.mkdir()
    paths = [
        write_notebook(tmp_path / f"loop{i}.ipynb", [IMPORT_ALL, "while True:\n    pass"])
        for i in range(2)
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sysdesign.grade", *map(str, paths), "--jobs", "2"],
        env=dict(os.environ, TMPDIR=str(scratch)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def both_running() -> bool:  # both kernels are up and running the notebooks
        return (
            len(list(scratch.glob("*/progress"))) >= 2
            and len(leftover_processes(str(scratch))) >= 4  # 2 workers, 2 kernels
        )

    deadline = time.monotonic() + 120  # two kernels starting at once on a busy 2-core CI box
    while not both_running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(leftover_processes(str(scratch))) >= 4  # 2 workers, 2 kernels
    proc.send_signal(getattr(signal, how))
    _, err = proc.communicate(timeout=30)
    if how == "SIGTERM":
        assert proc.returncode == 130
        assert "interrupted" in err
    deadline = time.monotonic() + 5
    while leftover_processes(str(scratch)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftover_processes(str(scratch)) == []
    deadline = time.monotonic() + 5
    while list(scratch.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(scratch.iterdir()) == []
