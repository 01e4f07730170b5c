"""The teacher's grader: run submitted lab notebooks and score them with the lab's checks.

::

    python -m sysdesign.grade SUBMISSION.ipynb [...] [--json] [--csv FILE]
        [--timeout SECONDS] [--cell-timeout SECONDS] [--memory MB] [--lab LAB_ID] [--jobs N]

Which lab a submission is for comes from its notebook metadata
(``metadata["sysdesign"]["lab"]``, set by the lab notebooks); ``--lab`` overrides it.

Every submission runs on a temporary copy (the submitted file is never modified), in its
own kernel, started by a worker process (:mod:`sysdesign.grade_worker`) in its own
session, so that nothing a submission does can take the grader down:

- memory: the kernel runs under ``RLIMIT_AS`` (``--memory``, 2048 MB by default), so a
  runaway allocation raises ``MemoryError`` (or kills that kernel) instead of the machine;
- time: each cell has a time limit (``--cell-timeout``, a quarter of ``--timeout`` by
  default); a cell that runs over is interrupted and grading goes on, so functions that
  are already defined still score. The whole submission has ``--timeout`` seconds (120 by
  default), after which the worker, the kernel and anything they started are killed;
  ``RLIMIT_CPU`` backs this up inside the kernel;
- death: a kernel that dies (``os._exit``, a crash, the memory limit) gives a score of 0
  and says in which cell it died.

After the learner's cells, the worker runs the lab's checks in the same kernel on the
names the notebook defined (:meth:`sysdesign.grading.Lab.run_all`): deleted or edited check
cells do not change a grade, and a renamed function is reported as not defined.

Output: a table (default), ``--json`` (a list of objects, one per submission, as returned
by :func:`grade_notebook`) and/or ``--csv FILE`` (one row per submission, one column per
check). The exit status is 0 whenever grading completed, even if submissions failed, and 2
for usage errors.

In Python::

    from sysdesign.grade import grade, grade_notebook
    grade_notebook("alice.ipynb")            # -> {"notebook": ..., "score": 4, ...}
    grade(["alice.ipynb", "bob.ipynb"], jobs=2)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sysdesign.grading import FAIL, PASS

NO_LAB = "cannot tell which lab this notebook is for (no metadata.sysdesign.lab); pass --lab"
TEMP_PREFIX = "sysdesign-grade-"

# Workers that are running now, so that Ctrl-C in the CLI can stop them all.
_RUNNING: dict[str, subprocess.Popen] = {}
_RUNNING_LOCK = threading.Lock()
_STOPPING = threading.Event()


def _submission(notebook: str) -> dict[str, Any]:
    return {
        "notebook": notebook,
        "lab": None,
        "score": 0,
        "max_score": 0,
        "checks": [],
        "error": None,
        "cell_errors": [],
    }


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _read_lab_id(nb: dict[str, Any]) -> str | None:
    """``metadata["sysdesign"]["lab"]``, or None when any part of it is missing."""
    metadata = nb.get("metadata")
    meta = metadata.get("sysdesign") if isinstance(metadata, dict) else None
    lab = meta.get("lab") if isinstance(meta, dict) else None
    return lab if isinstance(lab, str) and lab else None


def _read_notebook(path: Path) -> dict[str, Any]:
    """The notebook's JSON, checked just enough to run it (nbformat 4: a list of cells).

    Plain ``json``, not nbformat: importing nbformat costs seconds (jsonschema), and the
    worker validates the notebook anyway when it reads it.
    """
    try:
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("it is not a text file (.ipynb files are UTF-8 JSON)") from None
    except ValueError as exc:
        raise ValueError(f"invalid JSON ({exc})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("JSON without a list of cells")
    if nb.get("nbformat") != 4:
        raise ValueError(f"nbformat {nb.get('nbformat')!r}; only version 4 notebooks are graded")
    return nb


def grade_notebook(
    path: str | os.PathLike[str],
    *,
    lab: str | None = None,
    timeout: float = 120,
    memory_mb: int = 2048,
    cell_timeout: float | None = None,
) -> dict[str, Any]:
    """Grade one submission; never raises for anything the submission does.

    Returns ``{"notebook": path as given, "lab": id or None, "score", "max_score",
    "checks": [{"name", "passed", "message", "points"}], "error": None or a one-line
    reason, "cell_errors": ["cell 3: `1/0` raised ZeroDivisionError: ...", ...]}``.
    ``score`` is the sum of the points of the passed checks; ``checks`` is empty when the
    checks could not run (see ``error``); ``cell_errors`` lists the learner's cells that
    raised, which does not stop grading. ``lab`` overrides the notebook's metadata.
    """
    from sysdesign.grading import get_lab

    result = _submission(str(path))
    source = Path(path)
    if not source.exists():
        result["error"] = f"file not found: {path}"
        return result
    if source.is_dir():
        result["error"] = f"{path} is a directory, not a notebook"
        return result
    try:
        nb = _read_notebook(source)
    except (OSError, ValueError) as exc:  # unreadable, invalid JSON, not UTF-8, not a notebook
        result["error"] = f"not a notebook: {_one_line(str(exc), 160)}"
        return result

    lab_id = lab or _read_lab_id(nb)
    if lab_id is None:
        result["error"] = NO_LAB
        return result
    result["lab"] = lab_id
    try:
        the_lab = get_lab(lab_id)
    except KeyError as exc:
        result["error"] = str(exc.args[0])
        return result
    result["max_score"] = the_lab.max_score

    if cell_timeout is None:
        cell_timeout = max(1.0, timeout / 4)
    outcome = _run_worker(source, lab_id, timeout, cell_timeout, memory_mb)
    result["error"] = _one_line(outcome["error"], 500) if outcome.get("error") else None
    result["cell_errors"] = list(outcome.get("cell_errors") or [])
    if outcome.get("results") is not None:
        result["checks"] = [
            {
                "name": r["name"],
                "passed": bool(r["passed"]),
                "message": r["message"],
                "points": int(r["points"]),
            }
            for r in outcome["results"]
        ]
        result["score"] = sum(c["points"] for c in result["checks"] if c["passed"])
    return result


def grade(
    paths: Iterable[str | os.PathLike[str]],
    *,
    lab: str | None = None,
    timeout: float = 120,
    memory_mb: int = 2048,
    cell_timeout: float | None = None,
    jobs: int = 1,
) -> list[dict[str, Any]]:
    """Grade several submissions, ``jobs`` at a time; results in the order given."""
    paths = list(paths)

    def one(path: str | os.PathLike[str]) -> dict[str, Any]:
        return grade_notebook(
            path, lab=lab, timeout=timeout, memory_mb=memory_mb, cell_timeout=cell_timeout
        )

    _STOPPING.clear()
    if jobs <= 1 or len(paths) <= 1:
        return [one(p) for p in paths]
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade")
    try:
        return list(pool.map(one, paths))
    except BaseException:  # Ctrl-C: stop the running workers before waiting for threads
        _STOPPING.set()
        pool.shutdown(wait=False, cancel_futures=True)
        _stop_running()
        raise
    finally:
        pool.shutdown(wait=True)


# --- running one submission in a worker -------------------------------------------------


def _worker_env(workdir: Path) -> dict[str, str]:
    """The worker's (and so the kernel's) environment.

    - ``JUPYTER_RUNTIME_DIR`` in the temp dir keeps Jupyter's runtime files out of the
      teacher's, and marks the environment of the kernel and of every process it starts
      with the temp dir, which is how cleanup finds them (the worker also puts the
      kernel's connection file there, so it is on the kernel's command line);
    - ``IPYTHONDIR`` there too: the teacher's IPython startup files must not run in
      submissions, and nothing is written to their home;
    - ``MALLOC_ARENA_MAX=2``: glibc reserves 64 MB of address space per thread arena and
      the kernel has several threads; without this an idle kernel takes 800 MB of
      ``RLIMIT_AS`` (measured), with it about 220 MB;
    - one BLAS/OpenMP thread, for the same reason and for a fair CPU limit;
    - ``PYTHONPATH`` starts with the directory holding ``sysdesign``, so the kernel (which
      runs in the temp dir) imports the same package as the grader.
    """
    import sysdesign

    env = dict(os.environ)
    env["JUPYTER_RUNTIME_DIR"] = str(workdir / "runtime")
    env["IPYTHONDIR"] = str(workdir / "ipython")
    env.setdefault("MALLOC_ARENA_MAX", "2")
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")
    env.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    root = str(Path(sysdesign.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _run_worker(
    source: Path, lab_id: str, timeout: float, cell_timeout: float, memory_mb: int
) -> dict[str, Any]:
    """Run the worker on a temporary copy of ``source``; always clean everything up."""
    workdir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    try:
        copy = workdir / "submission.ipynb"
        shutil.copyfile(source, copy)
        result_file = workdir / "result.json"
        log_file = workdir / "worker.log"
        command = [
            sys.executable,
            "-m",
            "sysdesign.grade_worker",
            str(copy),
            "--lab",
            lab_id,
            "--result",
            str(result_file),
            "--timeout",
            repr(float(timeout)),
            "--cell-timeout",
            repr(float(cell_timeout)),
            "--memory",
            str(int(memory_mb)),
        ]
        if _STOPPING.is_set():
            return {"error": "grading was interrupted"}
        with open(log_file, "wb") as log:
            proc = subprocess.Popen(
                command,
                cwd=workdir,
                env=_worker_env(workdir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with _RUNNING_LOCK:
            _RUNNING[str(workdir)] = proc
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_all(proc, workdir)
            proc.wait()
            running = _read_text(workdir / "progress")
            where = f" (it was running {running})" if running else ""
            return {"error": f"grading did not finish within {timeout:g} s{where}"}
        finally:
            with _RUNNING_LOCK:
                _RUNNING.pop(str(workdir), None)
            _kill_all(proc, workdir)
        try:
            return json.loads(result_file.read_text())
        except (OSError, ValueError):
            lines = [line for line in _read_text(log_file).splitlines() if line.strip()]
            last = _one_line(lines[-1], 200) if lines else f"exit status {proc.returncode}"
            return {"error": f"the grader's worker failed ({last})"}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _kill_all(proc: subprocess.Popen, workdir: Path) -> None:
    """Kill the worker's process group, the kernel's, and every process left that refers
    to ``workdir`` (in its command line, working directory or environment).

    The worker is our child and not reaped yet, so its process group id cannot have been
    reused. The kernel runs in a session of its own (jupyter_client starts it so), which
    is why it needs its own kill: it is found by the connection file in ``workdir`` named
    on its command line, and its children by their environment (``JUPYTER_RUNTIME_DIR``)
    or working directory. Without ``/proc`` (not Linux) the pid file is the fallback.
    """
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    marker = str(workdir)
    victims = _processes_referring_to(marker)
    if victims is None:  # no /proc
        pid_text = _read_text(workdir / "kernel.pid")
        if pid_text.isdigit():
            for kill in (os.killpg, os.kill):
                try:
                    kill(int(pid_text), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        return
    for _ in range(3):  # again, in case one forked while we were killing
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        victims = _processes_referring_to(marker) or []
        if not victims:
            return
        time.sleep(0.05)


def _processes_referring_to(marker: str) -> list[int] | None:
    """Pids of our processes whose command line, cwd or environment contain ``marker``;
    ``None`` when there is no ``/proc`` to look in."""
    proc = Path("/proc")
    if not (proc / "self" / "cmdline").exists():
        return None
    needle = marker.encode()
    me = os.getpid()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
                continue
            if os.readlink(entry / "cwd").startswith(marker):
                found.append(int(entry.name))
                continue
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone, a zombie, or not ours to read
            continue
    return found


def _stop_running() -> None:
    with _RUNNING_LOCK:
        running = list(_RUNNING.items())
    for workdir, proc in running:
        _kill_all(proc, Path(workdir))


# --- output -------------------------------------------------------------------------------


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """One line per submission (notebook, score/max, error), then one line per check."""
    if not results:
        return "no submissions\n"
    width = min(max(len(r["notebook"]) for r in results), 60)
    lines = []
    for r in results:
        score = f"{r['score']}/{r['max_score']}"
        line = f"{r['notebook']:<{width}}  {score:>7}"
        if r["error"]:
            line += f"  {r['error']}"
        lines.append(line.rstrip())
        for check in r["checks"]:
            mark = PASS if check["passed"] else FAIL
            first = check["message"].partition("\n")[0]
            lines.append(f"    {mark} {check['name']}" + (f": {first}" if first else ""))
        for problem in r.get("cell_errors", []):
            lines.append(f"    ! {problem}")
    graded = sum(1 for r in results if r["checks"])
    lines.append(f"\n{len(results)} submission(s), {graded} graded")
    return "\n".join(lines) + "\n"


def write_csv(results: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """One row per submission: notebook, lab, score, max_score, error, then 1/0 per check.

    Check columns are every check of every lab seen; a check that did not run is 0, a
    check that is not part of that submission's lab is empty.
    """
    from sysdesign.grading import get_lab

    columns: list[str] = []
    lab_checks: list[list[str]] = []
    for r in results:
        names = [c["name"] for c in r["checks"]]
        if not names and r["lab"] and r["max_score"]:
            try:
                names = list(get_lab(r["lab"]).checks)
            except KeyError:
                pass
        lab_checks.append(names)
        for name in names:
            if name not in columns:
                columns.append(name)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["notebook", "lab", "score", "max_score", "error", *columns])
        for r, mine in zip(results, lab_checks, strict=True):
            passed = {c["name"]: c["passed"] for c in r["checks"]}
            marks = [("1" if passed.get(name) else "0") if name in mine else "" for name in columns]
            writer.writerow(
                [r["notebook"], r["lab"] or "", r["score"], r["max_score"], r["error"] or ""]
                + marks
            )


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sysdesign.grade",
        description=(
            "Grade submitted lab notebooks: run each one in its own kernel, with time and "
            "memory limits, and score it with the lab's checks."
        ),
    )
    parser.add_argument("notebooks", nargs="+", metavar="SUBMISSION.ipynb")
    parser.add_argument("--json", action="store_true", help="print a JSON list, not a table")
    parser.add_argument("--csv", metavar="FILE", help="also write one row per submission")
    parser.add_argument(
        "--timeout",
        type=_positive(float),
        default=120,
        metavar="SECONDS",
        help="time limit for a whole submission, kernel start included (default: 120)",
    )
    parser.add_argument(
        "--cell-timeout",
        type=_positive(float),
        default=None,
        metavar="SECONDS",
        help="time limit for one cell, which is then interrupted (default: timeout / 4)",
    )
    parser.add_argument(
        "--memory",
        type=_positive(int),
        default=2048,
        metavar="MB",
        help="address-space limit of each kernel (default: 2048; a kernel needs about 300)",
    )
    parser.add_argument("--lab", metavar="LAB_ID", help="grade every notebook against this lab")
    parser.add_argument(
        "--jobs", type=_positive(int), default=1, metavar="N", help="submissions at a time"
    )
    return parser


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        # `kill` (SIGTERM) stops the running submissions too, as Ctrl-C does.
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _main(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(args: argparse.Namespace) -> int:
    if args.lab is not None:
        from sysdesign.grading import load_labs

        labs = load_labs()
        if args.lab not in labs:
            build_parser().error(
                f"no lab with id {args.lab!r}; known labs: {', '.join(sorted(labs))}"
            )
    try:
        results = grade(
            args.notebooks,
            lab=args.lab,
            timeout=args.timeout,
            memory_mb=args.memory,
            cell_timeout=args.cell_timeout,
            jobs=args.jobs,
        )
    except KeyboardInterrupt:
        _stop_running()
        print("interrupted: the running submissions were stopped", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(format_table(results))
    if args.csv:
        try:
            write_csv(results, args.csv)
        except OSError as exc:
            print(f"could not write {args.csv}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
