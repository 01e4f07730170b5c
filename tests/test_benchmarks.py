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


# --- the rate limiter benchmark: the course's Redis limiters against limits' -----------


def test_exact_boundary_ties_are_found():
    from benchmarks.ratelimit import exact_boundary_ties

    trace = [(0.0, "a"), (0.5, "b"), (1.0, "a"), (1.2, "b"), (2.5, "a")]
    assert exact_boundary_ties(trace, 1.0) == 1  # a at 1.0, one window after a at 0.0
    assert exact_boundary_ties(trace, 0.7) == 1  # b at 1.2, 0.7 after b at 0.5
    assert exact_boundary_ties(trace, 0.3) == 0


@pytest.mark.redis_server
def test_ratelimit_benchmark_on_a_small_trace(redis_server):
    """One round trip per decision for the course's limiters (counted by the connections,
    and Redis saw exactly one EVALSHA per decision); and on a trace where no request
    comes exactly one window after another of its key, the course's sliding log admits
    exactly what limits' moving window admits, on the same server and the same clock."""
    from benchmarks.ratelimit import benchmark_on_server, benchmark_trace, exact_boundary_ties

    trace = benchmark_trace(1000)
    assert exact_boundary_ties(trace, 1.0) == 0
    results = {r.name: r for r in benchmark_on_server(redis_server, trace, rounds=1)}
    assert list(results) == [
        "course RedisSlidingWindowLog",
        "limits MovingWindowRateLimiter",
        "limits MovingWindowRateLimiter + stats",
        "course RedisSlidingWindowCounter",
        "limits SlidingWindowCounter",
        "limits SlidingWindowCounter + stats",
    ]
    for name in ("course RedisSlidingWindowLog", "course RedisSlidingWindowCounter"):
        course = results[name]
        assert course.round_trips_per_decision == 1.0, name
        assert course.commands["evalsha"] == course.decisions == len(trace)
        assert course.commands_per_decision > 2  # the commands inside the script
        assert course.ratio_vs_limits > 0 and course.compared_with in results
    for name in ("limits MovingWindowRateLimiter", "limits SlidingWindowCounter"):
        assert results[name].round_trips_per_decision == 1.0 and results[name].ratio_vs_limits == 1
        assert results[name + " + stats"].round_trips_per_decision == 2.0  # hit, then stats
    log, moving = results["course RedisSlidingWindowLog"], results["limits MovingWindowRateLimiter"]
    assert log.admitted == moving.admitted == results[moving.name + " + stats"].admitted
    assert 0.3 < log.admitted / log.decisions < 0.95  # the trace does hit the limit
    entry = log.to_json()
    assert {"decisions_per_s", "commands_per_decision", "ratio_vs_limits"} <= set(entry)
    assert entry["round_trips_per_decision"] == 1.0


@pytest.mark.redis_server
def test_ratelimit_only_json(redis_binary, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["--ratelimit-only", "--ratelimit-requests", "300", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "course RedisSlidingWindowLog" in printed and "vs limits" in printed
    report = json.loads(out.read_text())
    assert report["explorers"] == {} and report["notebooks"] == {} and report["ok"] is True
    assert len(report["ratelimit"]) == 6
    for entry in report["ratelimit"].values():
        assert entry["decisions_per_s"] > 0 and entry["commands_per_decision"] >= 1
        assert entry["ratio_vs_limits"] > 0


def test_ratelimit_without_redis_server_is_skipped_not_failed(monkeypatch, tmp_path, capsys):
    import benchmarks.ratelimit

    monkeypatch.setattr(benchmarks.ratelimit, "redis_server_path", lambda: None)
    out = tmp_path / "bench.json"
    assert main(["--ratelimit-only", "--json", str(out)]) == 0
    assert "skipped: redis-server not installed" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["ratelimit"] == {} and report["ok"] is True
    assert report["skipped"] == {"ratelimit": "skipped: redis-server not installed"}


def test_filter_leaves_out_the_ratelimit_benchmark_unless_it_matches(monkeypatch, tmp_path):
    import benchmarks.cli

    def not_expected(**_kwargs):
        raise AssertionError("the rate limiter benchmark ran")

    monkeypatch.setattr(benchmarks.cli, "run_ratelimit", not_expected)
    assert main(["--filter", "capacity"], root=tmp_path) == 0  # the capacity explorer only
    assert main(["--notebooks-only", "--filter", "ratelimit"], root=tmp_path) == 2
