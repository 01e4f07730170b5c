"""Lab checks: friendly, behavioural feedback that never stops a notebook.

A lab is a :class:`Lab` with named checks. Each check is a function whose parameter
names are the names of what the learner writes (``def storage_needed(storage_needed)``):
the check cell in the notebook passes the learner's function explicitly,

    lab.check("storage_needed", storage_needed)

(a check defined as ``def check_storage_needed`` is named ``storage_needed``)

and the teacher's grader (``python -m sysdesign.grade``) looks the same names up in the
submission's namespace, so deleted or edited check cells do not change a grade.

Check functions call the learner's code through :func:`call` and compare with
:func:`expect_equal` / :func:`expect_close`; a failed expectation raises
:class:`CheckFailed`, which the runner turns into a message with what was called, what
came back, what was expected and a hint. Nothing here raises into the notebook.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import math
import pkgutil
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

CHECK_MIMETYPE = "application/vnd.sysdesign.check+json"
PASS, FAIL = "✔", "✘"

LABS: dict[str, Lab] = {}
_MISSING = object()


class CheckFailed(AssertionError):
    """A check's expectation was not met; the runner reports it, never the notebook."""

    def __init__(
        self,
        problem: str,
        *,
        call: str | None = None,
        returned: Any = _MISSING,
        expected: Any = _MISSING,
        hint: str | None = None,
    ):
        super().__init__(problem)
        self.problem = problem
        self.call = call
        self.returned = returned
        self.expected = expected
        self.hint = hint

    def report(self, default_hint: str | None = None) -> str:
        lines = [self.problem]
        if self.call is not None:
            lines.append(f"  called:   {self.call}")
        if self.returned is not _MISSING:
            lines.append(f"  returned: {_short(self.returned)}")
        if self.expected is not _MISSING:
            shown = self.expected if isinstance(self.expected, str) else _short(self.expected)
            lines.append(f"  expected: {shown}")
        hint = self.hint or default_hint
        if hint:
            lines.append(f"  hint:     {hint}")
        return "\n".join(lines)


class CheckTimeout(BaseException):
    """Raised inside a check that runs past its time limit (a BaseException, so that a
    learner's ``except Exception`` cannot swallow it)."""


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_call(func: Any, args: tuple = (), kwargs: Mapping[str, Any] | None = None) -> str:
    name = getattr(func, "__name__", None) or _short(func, 40)
    parts = [_short(a, 60) for a in args]
    parts += [f"{k}={_short(v, 60)}" for k, v in (kwargs or {}).items()]
    return f"{name}({', '.join(parts)})"


def call(func: Any, *args: Any, hint: str | None = None, **kwargs: Any) -> Any:
    """Call the learner's ``func``; any exception becomes a :class:`CheckFailed` saying so."""
    shown = describe_call(func, args, kwargs)
    if not callable(func):
        raise CheckFailed(
            f"expected a function, but got {type(func).__name__} {_short(func, 60)}",
            hint="define it with `def` and run its cell",
        )
    try:
        return func(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(
            "not implemented yet",
            call=shown,
            hint=hint or "replace `raise NotImplementedError` with your code, then run the cell",
        ) from None
    except (CheckTimeout, KeyboardInterrupt):
        raise
    except BaseException as exc:  # a learner's SystemExit is feedback too
        raise CheckFailed(f"raised {type(exc).__name__}: {exc}", call=shown, hint=hint) from None


def expect_equal(returned: Any, expected: Any, *, call: str | None = None, hint: str | None = None):
    if returned != expected or (isinstance(returned, bool) and not isinstance(expected, bool)):
        raise CheckFailed(
            "wrong result", call=call, returned=returned, expected=expected, hint=hint
        )


def expect_close(
    returned: Any,
    expected: float,
    *,
    rel: float = 1e-6,
    abs_tol: float = 0.0,
    call: str | None = None,
    hint: str | None = None,
):
    """``returned`` must be a number within ``rel`` (relative) or ``abs_tol`` of ``expected``."""
    if isinstance(returned, bool) or not isinstance(returned, int | float):
        try:
            import numpy as np

            is_number = isinstance(returned, np.integer | np.floating)
        except ImportError:  # pragma: no cover
            is_number = False
        if not is_number:
            raise CheckFailed(
                f"expected a number, got {type(returned).__name__}",
                call=call,
                returned=returned,
                expected=expected,
                hint=hint,
            )
    if not math.isclose(float(returned), expected, rel_tol=rel, abs_tol=abs_tol):
        tolerance = f"within {rel:.0e} relative" if rel else f"within {abs_tol}"
        raise CheckFailed(
            "wrong result",
            call=call,
            returned=returned,
            expected=f"{expected!r} ({tolerance})",
            hint=hint,
        )


def check_cases(
    func: Any,
    cases: list[tuple[dict[str, Any], Any]],
    *,
    rel: float = 1e-6,
    hint: str | None = None,
    compare: Callable[[Any, Any, str], None] | None = None,
) -> str:
    """Call ``func(**kwargs)`` for every ``(kwargs, expected)`` case and compare.

    Numbers are compared with :func:`expect_close`, everything else with
    :func:`expect_equal`, unless ``compare(returned, expected, call_text)`` is given.
    """
    for kwargs, expected in cases:
        shown = describe_call(func, (), kwargs)
        returned = call(func, hint=hint, **kwargs)
        if compare is not None:
            compare(returned, expected, shown)
        elif isinstance(expected, int | float) and not isinstance(expected, bool):
            expect_close(returned, expected, rel=rel, call=shown, hint=hint)
        else:
            expect_equal(returned, expected, call=shown, hint=hint)
    return f"{len(cases)} cases"


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Interrupt the body with :class:`CheckTimeout` after ``seconds`` (main thread, Unix)."""
    usable = (
        seconds
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def _alarm(signum, frame):
        raise CheckTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class CheckResult:
    """The outcome of one check; shows as a short text in a notebook."""

    lab: str
    name: str
    passed: bool
    message: str
    points: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:
        mark = PASS if self.passed else FAIL
        head = f"{mark} {self.name}: {'passed' if self.passed else 'not yet'}"
        first, _, rest = self.message.partition("\n")
        head += f" ({first})" if self.passed and first else (f" — {first}" if first else "")
        return head + (f"\n{rest}" if rest else "")

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        return {"text/plain": repr(self), CHECK_MIMETYPE: self.to_dict()}


@dataclass
class Check:
    name: str
    func: Callable[..., Any]
    hint: str | None = None
    points: int = 1
    time_limit: float = 10.0
    needs: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        self.needs = tuple(inspect.signature(self.func).parameters)


class Lab:
    """A lab's checks, by name. Notebooks call :meth:`check`; the grader calls :meth:`run_all`."""

    def __init__(self, lab_id: str, title: str):
        if lab_id in LABS:
            raise ValueError(f"a lab with id {lab_id!r} is already defined")
        self.id = lab_id
        self.title = title
        self.checks: dict[str, Check] = {}
        LABS[lab_id] = self

    def define(
        self, name: str | None = None, *, hint: str | None = None, points: int = 1, time_limit=10.0
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: register a check. Its parameters name what it needs from the learner."""

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            check_name = name or func.__name__.removeprefix("check_")
            if check_name in self.checks:
                raise ValueError(f"lab {self.id!r} already has a check named {check_name!r}")
            self.checks[check_name] = Check(check_name, func, hint, points, time_limit)
            return func

        return register

    @property
    def max_score(self) -> int:
        return sum(check.points for check in self.checks.values())

    def run(self, name: str, *objects: Any) -> CheckResult:
        """Run one check against the learner's objects and return its result. Never raises."""
        check = self.checks.get(name)
        if check is None:
            known = ", ".join(self.checks)
            return CheckResult(
                self.id, name, False, f"no check named {name!r}; this lab has: {known}", 0
            )
        if len(objects) != len(check.needs):
            wanted = ", ".join(check.needs)
            return CheckResult(
                self.id,
                name,
                False,
                f"this check takes {len(check.needs)} argument(s): {wanted}",
                check.points,
            )
        try:
            with time_limit(check.time_limit):
                detail = check.func(*objects)
        except CheckFailed as failure:
            return CheckResult(self.id, name, False, failure.report(check.hint), check.points)
        except CheckTimeout:
            message = (
                f"did not finish within {check.time_limit:g} s: is there a loop that never "
                "ends, or a very slow step?"
            )
            return CheckResult(self.id, name, False, message, check.points)
        except KeyboardInterrupt:
            return CheckResult(self.id, name, False, "interrupted", check.points)
        except BaseException as exc:  # a bug in the check itself must not stop the notebook
            message = f"the check could not run: {type(exc).__name__}: {exc}"
            return CheckResult(self.id, name, False, message, check.points)
        return CheckResult(
            self.id, name, True, detail if isinstance(detail, str) else "", check.points
        )

    def check(self, name: str, *objects: Any) -> None:
        """Run one check and show its feedback under the cell."""
        result = self.run(name, *objects)
        try:
            from IPython.display import display

            display(result)
        except ImportError:  # pragma: no cover
            print(repr(result))

    def run_all(self, namespace: Mapping[str, Any]) -> list[CheckResult]:
        """Every check, with what it needs looked up by name in ``namespace`` (the grader)."""
        results = []
        for check in self.checks.values():
            missing = [need for need in check.needs if need not in namespace]
            if missing:
                names = ", ".join(f"`{m}`" for m in missing)
                message = (
                    f"{names} is not defined: the check looks for this exact name. "
                    "Did you rename or delete it, or is its cell not run?"
                )
                results.append(CheckResult(self.id, check.name, False, message, check.points))
            else:
                objects = [namespace[need] for need in check.needs]
                results.append(self.run(check.name, *objects))
        return results

    def __repr__(self) -> str:
        return f"<Lab {self.id!r}: {len(self.checks)} checks>"


def load_labs() -> dict[str, Lab]:
    """Import every ``sysdesign.*.lab`` and ``sysdesign.*.*_lab`` module, registering every lab."""
    import sysdesign

    for info in pkgutil.walk_packages(sysdesign.__path__, "sysdesign."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf == "lab" or leaf.endswith("_lab"):  # sysdesign.x.lab, sysdesign.x.sharding_lab
            importlib.import_module(info.name)
    return LABS


def get_lab(lab_id: str) -> Lab:
    labs = load_labs()
    if lab_id not in labs:
        raise KeyError(f"no lab with id {lab_id!r}; known labs: {', '.join(sorted(labs))}")
    return labs[lab_id]
