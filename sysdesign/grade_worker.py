"""The grader's worker: runs ONE submission in its own kernel and writes what happened.

``python -m sysdesign.grade`` starts this module once per submission, as a separate
process in its own session, on a temporary copy of the notebook::

    python -m sysdesign.grade_worker COPY.ipynb --lab LAB --result RESULT.json
        [--timeout SECONDS] [--cell-timeout SECONDS] [--memory MB]

Why a separate process: a submission can hang, eat all memory or kill its kernel, and
the grader must survive all of it. The worker starts a kernel under ``RLIMIT_AS`` (memory)
and ``RLIMIT_CPU`` limits, runs every code cell with a per-cell time limit (a cell that
runs over is interrupted and the next cell runs), then runs one extra cell in the same
kernel::

    get_lab(LAB).run_all(globals())

so the checks see whatever the learner's cells defined, whatever happened to the check
cells. The results come back as one line of JSON on the kernel's stdout, prefixed with a
random nonce that the learner's code cannot know, so printing a fake result does not work.

The worker writes ``kernel.pid`` (the kernel's process id, which is also its process
group: jupyter_client starts kernels in a new session) and ``progress`` (what is running
now) next to RESULT.json, so that the parent can say what was running when the overall
time limit ran out and kill the kernel too. The parent enforces that overall limit; the
worker itself waits for a cell at most its time limit plus a few seconds' grace for the
interrupt to take effect, after which it gives up on the kernel.

RESULT.json holds ``{"results": [CheckResult.to_dict(), ...] or null, "error": str or
null, "cell_errors": [str, ...]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

# jsonschema (imported by nbformat) imports rfc3987_syntax when it is installed, to check
# "iri" formats that notebooks do not use; building its grammar takes about 2 s, in every
# worker. Hiding it (in the worker process only, not when this module is imported) makes
# jsonschema skip those two format checkers, nothing else.
if __name__ == "__main__":
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionComplete, DeadKernelError

# Output kept from the check cell (learner code may print while it is checked).
_STDOUT_CAP = 8 * 2**20

CHECK_CELL = """\
def _sysdesign_grade_(namespace):
    import json, sys
    from sysdesign.grading import get_lab
    results = get_lab({lab!r}).run_all(namespace)
    sys.stdout.write({nonce!r} + json.dumps([r.to_dict() for r in results]) + "\\n")
    sys.stdout.flush()
_sysdesign_grade_(globals())
"""


class _Stuck(Exception):
    """A cell ran past its time limit and an interrupt did not stop it within the grace
    period (it ignores SIGINT, or is stuck in C code): the kernel has to be killed."""


def cell_label(index: int, cell: Any) -> str:
    """``cell 4: `while True:` `` — position counts every cell (1-based), as a teacher
    scrolling the notebook would; the first source line tells which one it is."""
    first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    if len(first) > 40:
        first = first[:39] + "…"
    return f"cell {index + 1}" + (f": `{first}`" if first else "")


class _GradingClient(NotebookClient):
    """An nbclient that remembers timeouts and errors per cell and keeps no outputs.

    Learner outputs are thrown away as they arrive (a cell printing in a loop must not
    fill the worker's memory); only the check cell's stdout is kept, up to a cap.
    """

    def __init__(self, nb: Any, **kw: Any):
        super().__init__(nb, **kw)
        self.check_index: int | None = None
        self.current: int | None = None
        self.timed_out: dict[int, float] = {}
        self.idle: set[int] = set()
        self.grace = 5.0
        self.errors: dict[int, tuple[str, str]] = {}
        self.check_stdout: list[str] = []
        self._kept = 0
        self.on_cell_error = self._record_error

    def _record_error(self, cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        content = execute_reply.get("content", {})
        self.errors[cell_index] = (str(content.get("ename", "")), str(content.get("evalue", "")))

    async def _async_handle_timeout(self, timeout: int, cell: Any = None) -> None:
        """A cell ran past its limit: interrupt the kernel, give it ``grace`` seconds to
        stop (a KeyboardInterrupt normally takes milliseconds), else give up on it."""
        index = self.current
        if index in self.timed_out:  # interrupted, went idle, yet no reply: give up
            raise _Stuck(index)
        self.timed_out[index] = timeout
        await super()._async_handle_timeout(timeout, cell)  # interrupts the kernel
        waited = 0.0
        while index not in self.idle:
            if waited >= self.grace:
                raise _Stuck(index)
            await asyncio.sleep(0.05)
            waited += 0.05
        return None  # nbclient then reads the reply to the interrupted cell

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> None:
        content = msg.get("content", {})
        msg_type = msg.get("msg_type")
        if msg_type == "status" and content.get("execution_state") == "idle":
            self.idle.add(cell_index)
            raise CellExecutionComplete()
        if (
            cell_index == self.check_index
            and msg_type == "stream"
            and content.get("name") == "stdout"
            and self._kept < _STDOUT_CAP
        ):
            text = str(content.get("text", ""))
            self.check_stdout.append(text)
            self._kept += len(text)
        return None


def _limit_resources(memory_mb: int, cpu_seconds: int) -> None:
    """Runs in the kernel's process between fork and exec (``preexec_fn``)."""
    import resource

    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def _death_reason(client: _GradingClient, cpu_seconds: int, memory_mb: int) -> str:
    """Why the kernel died, from its exit status when we can still see it."""
    process = getattr(getattr(client.km, "provisioner", None), "process", None)
    code = process.poll() if process is not None else None
    if code is None:
        return "os._exit? out of memory?"
    if code == 0:
        return "it exited: exit() or quit()?"
    if code > 0:
        return f"it exited with status {code}: os._exit?"
    signum = -code
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if signum == signal.SIGXCPU:
        return f"killed by {name}: it used more than {cpu_seconds} s of CPU time"
    if signum == signal.SIGKILL:
        return f"killed by {name}: out of memory?"
    if signum in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT):
        return f"crashed with {name}: out of memory ({memory_mb} MB limit)? a crash in C code?"
    return f"killed by {name}"


def _start_watchdog(client: _GradingClient, *, parent: int, deadline: float, workdir: Path) -> None:
    """If the grader that started us dies (killed, no chance to clean up) or we run far
    past the time limit, kill the kernel's process group and exit: a worker must never
    outlive its grader, and nor must a looping kernel. An orphan also removes its work
    dir, which nobody else will."""

    def watch() -> None:
        while os.getppid() == parent and time.monotonic() < deadline:
            time.sleep(0.5)
        process = getattr(getattr(client.km, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:  # not reaped: pid still ours
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass
        if os.getppid() != parent:
            shutil.rmtree(workdir, ignore_errors=True)
        os._exit(3)

    threading.Thread(target=watch, name="watchdog", daemon=True).start()


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run(
    notebook: Path,
    lab: str,
    *,
    workdir: Path,
    timeout: float = 120,
    cell_timeout: float = 30,
    memory_mb: int = 2048,
) -> dict[str, Any]:
    """Execute ``notebook`` in a fresh, limited kernel and run ``lab``'s checks on it."""
    started = time.monotonic()
    cpu_seconds = math.ceil(timeout) + 1
    nb = nbformat.read(notebook, as_version=4)
    nonce = "@@sysdesign-" + secrets.token_hex(16) + "@@"
    check = nbformat.v4.new_code_cell(CHECK_CELL.format(lab=lab, nonce=nonce))
    nb.cells.append(check)
    check_index = len(nb.cells) - 1
    check_timeout = cell_timeout

    client = _GradingClient(
        nb,
        timeout_func=lambda cell: check_timeout if cell is check else cell_timeout,
        allow_errors=True,
        interrupt_on_timeout=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        shutdown_kernel="immediate",
        startup_timeout=max(10, int(timeout)),
    )
    client.check_index = check_index
    client.grace = min(5.0, max(1.0, cell_timeout / 2))
    progress = workdir / "progress"
    problems: list[str] = []
    outcome: dict[str, Any] = {"results": None, "error": None, "cell_errors": []}

    def finish(error: str | None = None) -> dict[str, Any]:
        for index, (ename, evalue) in sorted(client.errors.items()):
            if index == check_index or (index in client.timed_out and ename == "KeyboardInterrupt"):
                continue
            first = evalue.strip().splitlines()[0] if evalue.strip() else ""
            if len(first) > 200:
                first = first[:199] + "…"
            text = f"{cell_label(index, nb.cells[index])} raised {ename}"
            if ename == "MemoryError":
                text += f" (the memory limit is {memory_mb} MB)"
            outcome["cell_errors"].append(text + (f": {first}" if first else ""))
        if error is not None:
            outcome["results"] = None
            problems.append(error)
        outcome["error"] = "; ".join(problems) or None
        return outcome

    _start_watchdog(client, parent=os.getppid(), deadline=started + timeout + 30, workdir=workdir)
    try:
        client.km = client.create_kernel_manager()
        # In the work dir, not in $TMPDIR: it is removed with it, even if the kernel is
        # killed, and the kernel's command line names the work dir (cleanup finds it).
        client.km.connection_file = str(workdir / "kernel.json")
        client.start_new_kernel(preexec_fn=lambda: _limit_resources(memory_mb, cpu_seconds))
        _write(workdir / "kernel.pid", str(client.km.provisioner.pid))
        client.start_new_kernel_client()
    except Exception as exc:  # the kernel died at start or never answered
        hint = (
            f"; is the memory limit of {memory_mb} MB too small? A kernel needs about 300 MB"
            if memory_mb < 1024
            else ""
        )
        return finish(f"the kernel could not start ({type(exc).__name__}: {exc}){hint}")

    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            client.current = index
            if index == check_index:
                _write(progress, "the checks")
                remaining = timeout - (time.monotonic() - started)
                check_timeout = max(5.0, remaining)
            else:
                _write(progress, cell_label(index, cell))
            try:
                client.execute_cell(cell, index)
            except DeadKernelError:
                where = "the checks" if index == check_index else cell_label(index, cell)
                reason = _death_reason(client, cpu_seconds, memory_mb)
                return finish(f"the kernel died while running {where} ({reason})")
            except _Stuck:
                if index == check_index:
                    return finish(f"the checks did not finish within {check_timeout:g} s")
                return finish(
                    f"{cell_label(index, cell)} did not finish within {cell_timeout:g} s "
                    "and could not be interrupted"
                )
            if index in client.timed_out and index != check_index:
                label = cell_label(index, cell)
                problems.append(f"{label} did not finish within {cell_timeout:g} s")

    text = "".join(client.check_stdout)
    for line in text.splitlines():
        if line.startswith(nonce):
            try:
                outcome["results"] = json.loads(line[len(nonce) :])
            except ValueError:
                break
            if check_index in client.timed_out:
                problems.append(
                    f"the checks took longer than {check_timeout:g} s: the check running "
                    "then was interrupted"
                )
            return finish()
    if check_index in client.timed_out:
        return finish(f"the checks did not finish within {check_timeout:g} s")
    if check_index in client.errors:
        ename, evalue = client.errors[check_index]
        text = f"the checks could not run: {ename}" + (f": {evalue}" if evalue else "")
        if ename == "MemoryError":
            text += f" (the memory limit is {memory_mb} MB)"
        return finish(text)
    return finish("the checks printed no result")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sysdesign.grade_worker",
        description="Run one notebook in a limited kernel and grade it (used by sysdesign.grade).",
    )
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--lab", required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--cell-timeout", type=float, default=30)
    parser.add_argument("--memory", type=int, default=2048)
    args = parser.parse_args(argv)
    outcome = run(
        args.notebook,
        args.lab,
        workdir=args.result.parent,
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        memory_mb=args.memory,
    )
    _write(args.result, json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
