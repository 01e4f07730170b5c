"""Tests for ``python -m benchmarks``: the explorer run end to end, notebook timing, helpers."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks` lives at the repo root, not in the package
    sys.path.insert(0, str(ROOT))

from benchmarks import TARGET_P95_MS  # noqa: E402
from benchmarks.cli import exit_code, explorer_table, main  # noqa: E402
from benchmarks.explorers import ExplorerTiming  # noqa: E402
from benchmarks.notebooks import NotebookFailed, time_notebook  # noqa: E402
from benchmarks.stats import format_table, percentiles  # noqa: E402
from sysdesign.explore import load_all  # noqa: E402


def write_notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in sources],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_explorers_only_json(tmp_path):
    out = tmp_path / "tmp.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--explorers-only", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert set(report) >= {"explorers", "notebooks"}
    assert report["notebooks"] == {}
    registered = set(load_all())
    assert registered, "no explorer is registered"
    assert set(report["explorers"]) == registered
    for name, entry in report["explorers"].items():
        assert isinstance(entry["p50_ms"], float) and isinstance(entry["p95_ms"], float)
        assert 0 < entry["p50_ms"] <= entry["p95_ms"] < TARGET_P95_MS, name
        assert name in proc.stdout
    assert "p95 ms" in proc.stdout and "SLOW" not in proc.stdout


def test_time_notebook_runs_in_its_folder_and_never_writes_back(tmp_path):
    path = write_notebook(
        tmp_path / "nb" / "tiny.ipynb",
        "import os\nopen('cwd.txt', 'w').write(os.getcwd())",
        "1 + 1",
    )
    before = path.read_bytes()
    seconds = time_notebook(path)
    assert 0 < seconds < 120
    assert Path((tmp_path / "nb" / "cwd.txt").read_text()).resolve() == path.parent.resolve()
    assert path.read_bytes() == before


def test_time_notebook_failure_is_one_line(tmp_path):
    path = write_notebook(tmp_path / "bad.ipynb", "x = 1", "print('hi')\n1 / 0")
    with pytest.raises(NotebookFailed) as info:
        time_notebook(path)
    message = str(info.value)
    assert "\n" not in message
    assert message == "cell 2: ZeroDivisionError: division by zero"


def test_failing_notebook_makes_exit_1(tmp_path, capsys):
    write_notebook(tmp_path / "solutions" / "broken.ipynb", "raise RuntimeError('boom')")
    write_notebook(tmp_path / "elsewhere" / "ignored.ipynb", "raise RuntimeError('not run')")
    out = tmp_path / "report.json"
    code = main(["--notebooks-only", "--json", str(out)], root=tmp_path)
    assert code == 1
    printed = capsys.readouterr().out
    assert "solutions/broken.ipynb" in printed and "FAILED" in printed
    assert "RuntimeError: boom" in printed and "ignored" not in printed
    report = json.loads(out.read_text())
    assert report["notebooks"] == {} and report["explorers"] == {}
    assert report["errors"]["notebooks"] == {"solutions/broken.ipynb": "cell 1: RuntimeError: boom"}
    assert report["ok"] is False


def test_filter_matching_nothing_is_a_usage_error(tmp_path, capsys):
    assert main(["--filter", "no-such-thing-anywhere"], root=tmp_path) == 2


def test_percentiles_known_inputs():
    # Inclusive (numpy-default) interpolation: p50 of 1..100 is 50.5, p95 is 95.05.
    p50, p95 = percentiles(list(range(1, 101)))
    assert p50 == pytest.approx(50.5) and p95 == pytest.approx(95.05)
    assert percentiles([3.0, 1.0, 2.0]) == pytest.approx((2.0, 2.9))
    assert percentiles([7.0]) == (7.0, 7.0)
    with pytest.raises(ValueError):
        percentiles([])


def test_format_table_known_inputs():
    rows = [["a", "1.0", "OK"], ["long", "12.5", "SLOW"]]
    table = format_table(["name", "ms", "status"], rows, "lrl")
    assert table.splitlines() == [
        "name    ms  status",
        "----  ----  ------",
        "a      1.0  OK",
        "long  12.5  SLOW",
    ]
    with pytest.raises(ValueError):
        format_table(["a", "b"], [["only one"]])


def test_slow_explorer_is_reported_and_fails():
    fast = ExplorerTiming("fast", points=3, samples=[1.0, 2.0, 3.0])
    slow = ExplorerTiming("slow", points=3, samples=[10.0, 50.0, 200.0])
    broken = ExplorerTiming("broken", points=3, error="ValueError: nope")
    assert (fast.status, slow.status, broken.status) == ("OK", "SLOW", "ERROR")
    table = explorer_table([fast, slow, broken])
    header = ["explorer", "p50", "ms", "p95", "ms", "target", "status"]
    assert table.splitlines()[0].split() == header
    assert "fast" in table and "SLOW" in table and "ERROR  ValueError: nope" in table
    assert exit_code([fast], []) == 0
    assert exit_code([fast, slow], []) == 1
    assert exit_code([fast, broken], []) == 1
