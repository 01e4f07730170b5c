"""Checks for the rate limiter lab (``labs/02-rate-limiter-lab.ipynb``).

The learner writes the sliding window counter twice, with the same shape, only the place
where the state lives differs:

- ``allow(counters, key, now, limit, window) -> bool``: in this process; ``counters`` is a
  dict the caller owns (one per limiter), in which ``allow`` keeps whatever it needs;
- ``redis_allow(client, key, now, limit, window) -> bool``: in Redis, one Lua script call
  per decision (``client.register_script``), so that it is atomic.

Windows are ``[k*window, (k+1)*window)``; with ``elapsed`` the fraction of the current
window gone by, ``estimate = previous * (1 - elapsed) + current``, and a request is
admitted when ``estimate < limit``. A rejected request counts for nothing.

:data:`SLIDING_WINDOW_COUNTER_CASES` is the one table of hand-computed traces: the checks
run it on the learner's code, and ``tests/test_ratelimit_lab.py`` runs it on the package's
own :class:`~sysdesign.ratelimit.SlidingWindowCounter` (and its Redis twin), so the table
and the package are held to each other. On top of the table, two checks compare the
learner's decisions with the package's reference, decision by decision, on seeded random
traces, and one check hammers one key from 8 threads through ``redis_allow``: exactly
``limit`` requests may pass, never more (:func:`hammer`).

Every Redis check runs on a store of its own: a fresh embedded fakeredis server per case
(the learner's own data in ``sysdesign.store.connect()`` is never touched), or, when
``REDIS_URL`` names a real server, that server with every key under a random prefix that
is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sysdesign.grading import CheckFailed, Lab, call
from sysdesign.ratelimit.algorithms import SlidingWindowCounter
from sysdesign.ratelimit.traces import client_mix

lab = Lab("rate-limiter", "Rate limiter: the sliding window counter, in process and in Redis")

NOT_IMPLEMENTED = "not implemented yet"
SCRIPT_COMMANDS = frozenset({"EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO", "FCALL"})


# --- the case table ----------------------------------------------------------------------


@dataclass(frozen=True)
class SlidingWindowCase:
    """A hand-computed trace: ``requests`` are ``(now, key, admitted)`` in time order, all
    through one limiter of ``limit`` requests per ``window`` seconds, from an empty state.
    ``hint`` is the hand computation, shown when a decision in this case is wrong."""

    name: str
    limit: int
    window: float
    requests: tuple[tuple[float, str, bool], ...]
    hint: str


def _repeat(n: int, now: float, key: str, admitted: bool) -> tuple[tuple[float, str, bool], ...]:
    return ((now, key, admitted),) * n


SLIDING_WINDOW_COUNTER_CASES: tuple[SlidingWindowCase, ...] = (
    SlidingWindowCase(
        "within one window",
        limit=3,
        window=1.0,
        # No previous window: the estimate is the current count, 0, 1, 2, then 3 = limit.
        requests=(
            (0.1, "a", True),
            (0.2, "a", True),
            (0.3, "a", True),
            (0.4, "a", False),
            (0.9, "a", False),
        ),
        hint="with no previous window, estimate = current count; admit while estimate < limit "
        "(strictly less: at 3 of 3 the window is full)",
    ),
    SlidingWindowCase(
        "the previous window, weighted",
        limit=10,
        window=1.0,
        # 8 in window [0, 1). At 1.25 a quarter of [1, 2) has gone by: 8 x 0.75 = 6, so the
        # estimates are 6, 7, 8, 9 (admitted) and 10 (rejected). At 1.5: 8 x 0.5 + 4 = 8.
        requests=_repeat(8, 0.5, "a", True)
        + _repeat(4, 1.25, "a", True)
        + ((1.25, "a", False), (1.5, "a", True), (1.5, "a", True), (1.5, "a", False)),
        hint="estimate = previous x (1 - elapsed) + current: at 1.25, 8 x 0.75 + current; "
        "at 1.5, 8 x 0.5 + current; admit while estimate < 10",
    ),
    SlidingWindowCase(
        "two windows later nothing is left",
        limit=2,
        window=10.0,
        # a: 2 in [0, 10). b: 2 in [0, 10), then at 15 (half of [10, 20) gone) 2 x 0.5 = 1:
        # one more. a at 25 is in [20, 30): [0, 10) is two windows back and counts for 0.
        requests=(
            (5.0, "a", True),
            (5.0, "a", True),
            (5.0, "a", False),
            (5.0, "b", True),
            (5.0, "b", True),
            (15.0, "b", True),
            (15.0, "b", False),
            (25.0, "a", True),
            (25.0, "a", True),
            (25.0, "a", False),
        ),
        hint="only the window just before the current one counts: a window two or more "
        "windows back counts for nothing (the previous count is 0 then, not the last one "
        "you stored)",
    ),
    SlidingWindowCase(
        "each key on its own",
        limit=1,
        window=1.0,
        requests=(
            (0.5, "a", True),
            (0.5, "b", True),
            (0.6, "a", False),
            (0.6, "b", False),
            (0.7, "c", True),
            (0.8, "a", False),
        ),
        hint="keep separate counts for every key: one client's requests never use up another's",
    ),
    SlidingWindowCase(
        "rejected requests do not count",
        limit=2,
        window=1.0,
        # 2 admitted at 0.0, 4 rejected. At 1.5: 2 x 0.5 = 1, admitted; then 1 + 1 = 2, not.
        # At 2.25: [1, 2) held 1, 1 x 0.75 = 0.75, admitted.
        requests=_repeat(2, 0.0, "a", True)
        + ((0.25, "a", False), (0.5, "a", False), (0.75, "a", False), (0.9, "a", False))
        + ((1.5, "a", True), (1.5, "a", False), (2.25, "a", True)),
        hint="only an admitted request adds 1 to the current count; a rejected one changes "
        "nothing (otherwise a client that keeps retrying locks itself out)",
    ),
    SlidingWindowCase(
        "windows start at multiples of the window",
        limit=2,
        window=10.0,
        # The first request at 7 is in [0, 10), not in a window [7, 17). At 10, [10, 20)
        # begins: 2 x (1 - 0) = 2, full. At 15: 2 x 0.5 = 1, one more. At 19: 2 x 0.1 + 1.
        requests=(
            (7.0, "a", True),
            (7.0, "a", True),
            (9.0, "a", False),
            (10.0, "a", False),
            (15.0, "a", True),
            (15.0, "a", False),
            (19.0, "a", True),
        ),
        hint="windows are [k x window, (k+1) x window) with k = floor(now / window), the "
        "same for every key, not counted from a key's first request",
    ),
)


# --- running a case or a trace -----------------------------------------------------------

# decide(key, now, limit, window) -> bool, and shown(key, now, limit, window) -> the call
Decide = Callable[[str, float, int, float], bool]
Shown = Callable[[str, float, int, float], str]


def _history(requests, upto: int) -> str:
    """The case's requests before ``upto``, grouped: ``0.5 'a' admitted x8, ...``."""
    groups: list[list] = []
    for now, key, admitted in requests[:upto]:
        if groups and groups[-1][:3] == [now, key, admitted]:
            groups[-1][3] += 1
        else:
            groups.append([now, key, admitted, 1])
    parts = [
        f"{now:g} {key!r} {'admitted' if ok else 'rejected'}" + (f" x{n}" if n > 1 else "")
        for now, key, ok, n in groups
    ]
    return ", ".join(parts) if parts else "none: this is the first request"


class _WrongDecision(CheckFailed):
    """A decision that differs from the case table's."""

    def __init__(self, case: SlidingWindowCase, detail: str, **details):
        super().__init__(detail, **details)
        self.case = case


def _run_case(case: SlidingWindowCase, decide: Decide, shown: Shown) -> None:
    for i, (now, key, expected) in enumerate(case.requests):
        returned = decide(key, now, case.limit, case.window)
        if returned != expected:
            raise _WrongDecision(
                case,
                f"case {case.name!r} (limit={case.limit}, window={case.window:g}), request "
                f"{i + 1} of {len(case.requests)}\n  before it: {_history(case.requests, i)}",
                call=shown(key, now, case.limit, case.window),
                returned=returned,
                expected=expected,
                hint=case.hint,
            )


def _run_cases(run_one: Callable[[SlidingWindowCase], None]) -> str:
    """Run every case (each on a fresh limiter); report all that go wrong, the first in full.

    Any other failure (not implemented, an exception, a wrong type) stops at once.
    """
    wrong: list[_WrongDecision] = []
    for case in SLIDING_WINDOW_COUNTER_CASES:
        try:
            run_one(case)
        except _WrongDecision as failure:
            wrong.append(failure)
    total = len(SLIDING_WINDOW_COUNTER_CASES)
    if wrong:
        first = wrong[0]
        names = ", ".join(repr(failure.case.name) for failure in wrong)
        first.problem = (
            f"wrong decisions in {len(wrong)} of {total} hand-computed cases: {names}\n"
            f"  the first: {first.problem}"
        )
        raise first
    requests = sum(len(case.requests) for case in SLIDING_WINDOW_COUNTER_CASES)
    return f"{total} hand-computed traces, {requests} decisions"


@dataclass(frozen=True)
class RandomTrace:
    """A seeded multi-client trace and the limiter settings to replay it with."""

    seed: int
    limit: int
    window: float
    trace: list[tuple[float, str]]


def random_traces(count: int) -> list[RandomTrace]:
    """``count`` seeded traces: 3 steady and 2 bursty clients over 20 s, bursts a little
    over twice the limit, windows of 0.5 to 4 s, some starting far from time 0."""
    traces = []
    for seed in range(count):
        rng = random.Random(seed)
        limit = rng.randint(1, 6)
        window = rng.choice([0.5, 1.0, 2.5, 4.0])
        start = rng.choice([0.0, 1000.25, 86_400.0 * 365 + rng.uniform(0, 1000)])
        trace = client_mix(duration=20, seed=seed, start=start, burst_size=2 * limit + 1)
        traces.append(RandomTrace(seed, limit, window, trace))
    return traces


def _reference_estimate(reference: SlidingWindowCounter, key: str, now: float) -> str:
    """How the reference sees ``key`` at ``now``: ``previous x (1 - elapsed) + current``."""
    state = reference._states.get(key)  # the reference's own state, only read
    index, previous, current = reference._counts_at(state, now)
    elapsed = now / reference.window - index
    estimate = previous * (1 - elapsed) + current
    return (
        f"the reference's estimate there: previous {previous} x (1 - {elapsed:.4f}) + "
        f"current {current} = {estimate:.4f}, limit {reference.limit}"
    )


def _run_random_trace(item: RandomTrace, decide: Decide, shown: Shown) -> int:
    """Replay ``item`` through ``decide`` and the package's reference side by side."""
    reference = SlidingWindowCounter(limit=item.limit, window=item.window)
    for i, (now, key) in enumerate(item.trace):
        explanation = _reference_estimate(reference, key, now)
        expected = bool(reference.allow(key, now))
        returned = decide(key, now, item.limit, item.window)
        if returned != expected:
            raise CheckFailed(
                f"a different decision than the reference SlidingWindowCounter on random "
                f"trace {item.seed} (limit={item.limit}, window={item.window:g}), request "
                f"{i + 1} of {len(item.trace)}\n  {explanation}",
                call=shown(key, now, item.limit, item.window),
                returned=returned,
                expected=expected,
            )
    return len(item.trace)


def _shower(name: str, first: str, prefix: str = "") -> Shown:
    def shown(key: str, now: float, limit: int, window: float) -> str:
        return f"{name}({first}, {prefix + key!r}, {now!r}, limit={limit!r}, window={window!r})"

    return shown


def _decider(func, first_arg, shown: Shown, prefix: str = "") -> Decide:
    """Calls of the learner's ``func(first_arg, key, now, limit, window)`` as decisions."""

    def decide(key: str, now: float, limit: int, window: float) -> bool:
        text = shown(key, now, limit, window)
        try:
            returned = call(func, first_arg, prefix + key, now, limit, window)
        except CheckFailed as failure:
            failure.call = text  # the call as the learner would write it
            if NOT_IMPLEMENTED in failure.problem and failure.problem != NOT_IMPLEMENTED:
                # The lab's Lua skeleton replies with an error that says so.
                failure.problem = NOT_IMPLEMENTED
                failure.hint = "write the Lua script in SLIDING_WINDOW_COUNTER_LUA, run its cell"
            raise
        if not isinstance(returned, bool):
            raise CheckFailed(
                f"expected True or False, got {type(returned).__name__}",
                call=text,
                returned=returned,
                expected="True (admit) or False (reject)",
                hint="return a bool, e.g. `return estimate < limit` (for a script's reply "
                "of 1 or 0: `return reply == 1`)",
            )
        return returned

    return decide


# --- a Redis of the check's own ----------------------------------------------------------


class _CommandSpy:
    """Records every command sent through ``client.execute_command`` (what scripts from
    ``register_script`` and every command method go through), each optionally after a
    delay that stands for the network between an app server and Redis."""

    def __init__(self, client, latency: float = 0.0):
        self.client = client
        self.latency = latency
        self.sent: list[str] = []
        self._original = client.execute_command
        client.execute_command = self._execute

    def _execute(self, *args, **options):
        name = args[0] if args else ""
        name = name.decode() if isinstance(name, bytes) else str(name)
        self.sent.append(name.upper())  # list.append is atomic: safe from many threads
        if self.latency:
            time.sleep(self.latency)
        return self._original(*args, **options)

    def restore(self) -> None:
        self.client.execute_command = self._original


@contextlib.contextmanager
def _check_store() -> Iterator[tuple[Any, str]]:
    """``(client, key prefix)`` of an empty store that only this check uses: a fresh
    embedded fakeredis, or the server at ``REDIS_URL`` under a random prefix."""
    from sysdesign.store import REDIS_URL_ENV, connect

    if not os.environ.get(REDIS_URL_ENV, "").strip():
        import fakeredis

        yield fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True), ""
        return
    client = connect()
    prefix = f"sysdesign-lab-{secrets.token_hex(4)}:"
    try:
        yield client, prefix
    finally:
        with contextlib.suppress(Exception):
            stale = list(client.scan_iter(match=f"*{prefix}*", count=1000))
            if stale:
                client.delete(*stale)
        client.close()


# --- the checks --------------------------------------------------------------------------

ALLOW_HINT = (
    "estimate = previous x (1 - elapsed) + current, with elapsed the fraction of the "
    "current window gone by; admit (and count) the request when estimate < limit"
)
REDIS_HINT = (
    "run SLIDING_WINDOW_COUNTER_LUA with client.register_script: KEYS are the current and "
    "the previous window's counters, ARGV are limit, window, now"
)


def _in_process(allow, counters: dict, shown: Shown) -> Decide:
    """The learner's ``allow`` on ``counters``; an admission must leave state in them."""
    decide = _decider(allow, counters, shown)

    def decide_and_keep(key: str, now: float, limit: int, window: float) -> bool:
        admitted = decide(key, now, limit, window)
        if admitted and not counters:
            raise CheckFailed(
                "allow() admitted a request but kept nothing in `counters`",
                call=shown(key, now, limit, window),
                hint="keep each key's counts in the dict you are given (every limiter, and "
                "every case of this check, has its own), not in a global variable",
            )
        return admitted

    return decide_and_keep


def _in_redis(redis_allow, client, prefix: str, shown: Shown) -> Decide:
    """The learner's ``redis_allow`` on ``client``; each call must send it a command."""
    spy = _CommandSpy(client)
    decide = _decider(redis_allow, client, shown, prefix)

    def decide_through_client(key: str, now: float, limit: int, window: float) -> bool:
        spy.sent.clear()
        admitted = decide(key, now, limit, window)
        if not spy.sent:
            raise CheckFailed(
                "redis_allow sent no command through the `client` it was given",
                call=shown(key, now, limit, window),
                hint="use the client argument (every check gives you an empty Redis of its "
                "own): `client.register_script(SLIDING_WINDOW_COUNTER_LUA)`, then call the "
                "script",
            )
        return admitted

    return decide_through_client


@lab.define(hint=ALLOW_HINT)
def check_allow(allow):
    shown = _shower("allow", "counters")
    # A new limiter, so new counters, for every case.
    return _run_cases(lambda case: _run_case(case, _in_process(allow, {}, shown), shown))


@lab.define(hint=ALLOW_HINT)
def check_allow_random_traces(allow):
    shown = _shower("allow", "counters")
    traces = random_traces(8)
    decisions = sum(
        _run_random_trace(item, _in_process(allow, {}, shown), shown) for item in traces
    )
    return f"{len(traces)} random traces, {decisions} decisions, all as the reference's"


@lab.define(hint=REDIS_HINT)
def check_redis_allow(redis_allow):
    def run_one(case: SlidingWindowCase) -> None:
        with _check_store() as (client, prefix):  # an empty Redis for every case
            shown = _shower("redis_allow", "client", prefix)
            _run_case(case, _in_redis(redis_allow, client, prefix, shown), shown)

    return _run_cases(run_one)


@lab.define(hint=REDIS_HINT)
def check_redis_allow_random_traces(redis_allow):
    traces = random_traces(5)
    decisions = 0
    for item in traces:
        with _check_store() as (client, prefix):
            shown = _shower("redis_allow", "client", prefix)
            decide = _in_redis(redis_allow, client, prefix, shown)
            decisions += _run_random_trace(item, decide, shown)
    return f"{len(traces)} random traces, {decisions} decisions, all as the reference's"


# The concurrency check: 8 app servers x 25 requests for one key, a limit of 20, 5 ms of
# network before every command (see hammer). 20 admitted in round 3, rejections after.
CONCURRENCY = {"threads": 8, "requests": 25, "limit": 20, "latency": 0.005}


@dataclass(frozen=True)
class HammerResult:
    """What :func:`hammer` saw: how many requests passed, and the commands they sent."""

    admitted: int
    requests: int
    limit: int
    per_thread: tuple[int, ...]
    commands: dict[str, int]
    error: str | None = None

    @property
    def round_trips_per_decision(self) -> float:
        return sum(self.commands.values()) / self.requests

    def __str__(self) -> str:
        sent = ", ".join(f"{name} x{n}" for name, n in self.commands.items())
        text = (
            f"{self.admitted} of {self.requests} admitted for a limit of {self.limit}; "
            f"commands per decision: {self.round_trips_per_decision:g} ({sent})"
        )
        return text + (f"; error: {self.error}" if self.error else "")


def hammer(
    redis_allow,
    *,
    threads: int = 8,
    requests: int = 25,
    limit: int = 20,
    window: float = 1.0,
    now: float = 100.5,
    latency: float = 0.005,
    client=None,
    key: str = "shared",
    timeout: float = 8.0,
) -> HammerResult:
    """``threads`` "app servers" (threads) each send ``requests`` requests for one ``key``
    through ``redis_allow``, all timed ``now``. A correct limiter admits exactly ``limit``.

    The requests come in rounds: in each, every app server sends one request at the same
    moment (a burst reaching the whole fleet at once), then waits for the others. Every
    command first waits ``latency`` seconds (the network), longer than all the app servers'
    commands take to run one after the other in Redis. So within a round all of them read
    before any of them writes: a limiter that reads, decides and then writes over-admits
    every time, not only when the timing happens to be unlucky, while a decision made in
    one script call cannot.

    ``client`` defaults to a fresh embedded Redis (shared by the threads, as one server
    is); one warm-up call (another key) loads the script before the threads start.
    """
    own_store = contextlib.nullcontext((client, "")) if client is not None else _check_store()
    with own_store as (client, prefix):
        redis_allow(client, prefix + "warm-up", now, limit, window)
        spy = _CommandSpy(client, latency)
        counts = [0] * threads
        errors: list[str] = []
        next_round = threading.Barrier(threads)

        def app_server(i: int) -> None:
            try:
                for _ in range(requests):
                    next_round.wait(timeout)
                    if redis_allow(client, prefix + key, now, limit, window):
                        counts[i] += 1
            except threading.BrokenBarrierError:
                pass  # another app server failed (and said why) or ran out of time
            except BaseException as exc:  # reported, never lost in a thread
                errors.append(f"{type(exc).__name__}: {exc}")
                next_round.abort()

        workers = [
            threading.Thread(target=app_server, args=(i,), daemon=True, name=f"app-server-{i}")
            for i in range(threads)
        ]
        try:
            for worker in workers:
                worker.start()
            deadline = time.monotonic() + timeout
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
        finally:
            spy.restore()
        if not errors and (next_round.broken or any(w.is_alive() for w in workers)):
            errors.append(f"the threads did not finish within {timeout:g} s")
        return HammerResult(
            admitted=sum(counts),
            requests=threads * requests,
            limit=limit,
            per_thread=tuple(counts),
            commands=dict(Counter(spy.sent).most_common()),
            error=errors[0] if errors else None,
        )


@lab.define(
    hint="read the counters, decide and write back in ONE Lua script: Redis runs a script "
    "to the end before it runs any other command, so no two requests see the same count"
)
def check_redis_allow_concurrency(redis_allow):
    threads, requests, limit = (CONCURRENCY[name] for name in ("threads", "requests", "limit"))
    shown = _shower("redis_allow", "client")("shared", 100.5, limit, 1.0)
    # One call first, in this thread: a missing or broken redis_allow says so plainly.
    with _check_store() as (client, prefix):
        first = _shower("redis_allow", "client", prefix)
        _in_redis(redis_allow, client, prefix, first)("first", 100.5, limit, 1.0)
    result = hammer(redis_allow, **CONCURRENCY)
    if result.error:
        raise CheckFailed(
            f"redis_allow raised in one of the {threads} threads: {result.error}", call=shown
        )
    if result.admitted > limit:
        raise CheckFailed(
            f"{threads} threads x {requests} requests for one key, in rounds of "
            f"{threads} at once: {result.admitted} admitted for a limit of {limit}, "
            f"{result.admitted - limit} too many\n  threads read the same count before "
            "any of them wrote it back (admitted per thread: "
            f"{', '.join(map(str, result.per_thread))})",
            call=shown,
            returned=result.admitted,
            expected=limit,
        )
    if result.admitted < limit:
        raise CheckFailed(
            f"{threads} threads x {requests} requests for one key, in rounds of "
            f"{threads} at once: only {result.admitted} admitted for a limit of {limit}",
            call=shown,
            returned=result.admitted,
            expected=limit,
            hint="the first `limit` requests at one instant must all pass",
        )
    scripts = sum(n for name, n in result.commands.items() if name in SCRIPT_COMMANDS)
    if scripts != result.requests or sum(result.commands.values()) != result.requests:
        sent = ", ".join(f"{name} x{n}" for name, n in result.commands.items())
        raise CheckFailed(
            f"each decision must be one round trip, one call of your script; "
            f"{result.requests} decisions sent {sent}",
            call=shown,
            hint="a Python lock only protects threads of this process, not app servers on "
            "other machines: put the whole decision in the Lua script and call it once",
        )
    return (
        f"{threads} threads x {requests} requests: exactly {limit} admitted, one script call each"
    )
