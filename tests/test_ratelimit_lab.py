"""The rate limiter lab's checks: the case table holds for the package's own limiters, the
package's reference passes every check, and each typical mistake is caught by the check
meant to catch it (with a message that names the mistake), in one process and in Redis."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import fakeredis
import nbformat
import pytest

from sysdesign.ratelimit import RedisSlidingWindowCounter, SlidingWindowCounter
from sysdesign.ratelimit import lab as lab_module
from sysdesign.ratelimit.lab import (
    SLIDING_WINDOW_COUNTER_CASES,
    hammer,
    lab,
    random_traces,
)

REPO = Path(__file__).resolve().parent.parent
CASES = {case.name: case for case in SLIDING_WINDOW_COUNTER_CASES}
CHECKS = [
    "allow",
    "allow_random_traces",
    "redis_allow",
    "redis_allow_random_traces",
    "redis_allow_concurrency",
]
REDIS_CHECKS = CHECKS[2:]


def fresh_redis():
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


def run(check: str, func):
    return lab.run(check, func)


def expect_fail(check: str, func, *fragments: str):
    result = run(check, func)
    assert not result.passed, f"{check} passed {func.__name__}"
    for fragment in fragments:
        assert fragment in result.message, result.message
    return result


# --- the case table is true of the package ------------------------------------------------


@pytest.mark.parametrize("case", SLIDING_WINDOW_COUNTER_CASES, ids=lambda c: c.name)
def test_case_table_holds_for_the_package_limiter(case):
    limiter = SlidingWindowCounter(limit=case.limit, window=case.window)
    decisions = [bool(limiter.allow(key, now)) for now, key, _ in case.requests]
    assert decisions == [admitted for _, _, admitted in case.requests]


@pytest.mark.parametrize("case", SLIDING_WINDOW_COUNTER_CASES, ids=lambda c: c.name)
def test_case_table_holds_for_the_package_redis_twin(case):
    limiter = RedisSlidingWindowCounter(fresh_redis(), limit=case.limit, window=case.window)
    decisions = [bool(limiter.allow(key, now)) for now, key, _ in case.requests]
    assert decisions == [admitted for _, _, admitted in case.requests]


def test_case_table_covers_what_the_lab_promises():
    assert set(CASES) == {
        "within one window",
        "the previous window, weighted",
        "two windows later nothing is left",
        "each key on its own",
        "rejected requests do not count",
        "windows start at multiples of the window",
    }
    for case in SLIDING_WINDOW_COUNTER_CASES:
        times = [now for now, _, _ in case.requests]
        assert times == sorted(times), case.name  # the package limiter's clock only goes on
        assert {True, False} <= {admitted for _, _, admitted in case.requests}, case.name


def test_random_traces_are_seeded_and_varied():
    first, again = random_traces(8), random_traces(8)
    assert [t.trace for t in first] == [t.trace for t in again]
    assert len({(t.limit, t.window) for t in first}) >= 4
    assert min(t.trace[0][0] for t in first) < 1 < 1e6 < max(t.trace[0][0] for t in first)
    for item in first:  # the reference both admits and rejects on every trace
        limiter = SlidingWindowCounter(limit=item.limit, window=item.window)
        decisions = [bool(limiter.allow(key, now)) for now, key in item.trace]
        assert any(decisions) and not all(decisions)


# --- the package's reference, and a solution like the lab's, pass every check ------------


def package_allow(counters, key, now, limit, window):
    limiter = counters.setdefault((limit, window), SlidingWindowCounter(limit=limit, window=window))
    return bool(limiter.allow(key, now))


def package_redis_allow(client, key, now, limit, window):
    return bool(RedisSlidingWindowCounter(client, limit=limit, window=window).allow(key, now))


def test_the_package_passes_every_check():
    results = lab.run_all({"allow": package_allow, "redis_allow": package_redis_allow})
    assert [r.name for r in results] == CHECKS
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]
    assert lab.max_score == 5


def two_key_allow(lua: str, prefix: str = "ratelimit"):
    """A ``redis_allow`` as the lab asks for it, running ``lua``."""

    def redis_allow(client, key, now, limit, window):
        index = math.floor(now / window)
        keys = [f"{prefix}:{{{key}}}:{index}", f"{prefix}:{{{key}}}:{index - 1}"]
        return client.register_script(lua)(keys=keys, args=[limit, window, now]) == 1

    return redis_allow


HEAD = """
local limit, window, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local elapsed = now / window - math.floor(now / window)
"""
LUA = (
    HEAD
    + """
if previous * (1 - elapsed) + current >= limit then return 0 end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(2 * window * 1000) + 1000)
return 1
"""
)


def in_process_allow(counters, key, now, limit, window):
    """The lab's solution of part 1."""
    index = math.floor(now / window)
    stored_index, previous, current = counters.get(key, (index, 0, 0))
    if index == stored_index + 1:
        previous, current = current, 0
    elif index != stored_index:
        previous, current = 0, 0
    if previous * (1 - (now / window - index)) + current >= limit:
        return False
    counters[key] = (index, previous, current + 1)
    return True


def test_a_solution_like_the_labs_passes_every_check():
    results = lab.run_all({"allow": in_process_allow, "redis_allow": two_key_allow(LUA)})
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]


@pytest.mark.redis_server
def test_checks_run_on_a_real_server_and_leave_nothing_behind(redis_server, monkeypatch):
    """With REDIS_URL set the checks use that server, under a prefix they delete."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    client = redis_server.client()
    client.flushall()
    client.set("learners-own-data", "kept")
    for check in REDIS_CHECKS:
        result = run(check, two_key_allow(LUA))
        assert result.passed, result.message
    naive = expect_fail("redis_allow_concurrency", read_then_incr, "too many")
    assert "sysdesign-lab-" not in naive.message
    assert client.keys("*") == ["learners-own-data"]
    client.close()


# --- mistakes in part 1, each caught by the case meant for it ---------------------------


def fixed_window(counters, key, now, limit, window):
    """No weighting: the previous window is forgotten at the boundary."""
    index = math.floor(now / window)
    stored, count = counters.get(key, (index, 0))
    count = count if stored == index else 0
    if count >= limit:
        return False
    counters[key] = (index, count + 1)
    return True


def off_by_one(counters, key, now, limit, window):
    """``<=`` instead of ``<``: one request too many per window."""
    index = math.floor(now / window)
    stored_index, previous, current = counters.get(key, (index, 0, 0))
    if index == stored_index + 1:
        previous, current = current, 0
    elif index != stored_index:
        previous, current = 0, 0
    if previous * (1 - (now / window - index)) + current <= limit:
        counters[key] = (index, previous, current + 1)
        return True
    return False


def counts_rejected(counters, key, now, limit, window):
    """Every request is counted, admitted or not."""
    index = math.floor(now / window)
    stored_index, previous, current = counters.get(key, (index, 0, 0))
    if index == stored_index + 1:
        previous, current = current, 0
    elif index != stored_index:
        previous, current = 0, 0
    counters[key] = (index, previous, current + 1)
    return previous * (1 - (now / window - index)) + current < limit


def previous_never_fades(counters, key, now, limit, window):
    """Whatever window was stored last counts as the previous one, however old."""
    index = math.floor(now / window)
    stored_index, previous, current = counters.get(key, (index, 0, 0))
    if index != stored_index:
        previous, current = current, 0
    if previous * (1 - (now / window - index)) + current >= limit:
        return False
    counters[key] = (index, previous, current + 1)
    return True


def windows_from_first_request(counters, key, now, limit, window):
    """Each key's windows start at its first request instead of at multiples of window."""
    origin = counters.setdefault(("origin", key), now)
    shifted = {key: counters[key]} if key in counters else {}
    admitted = in_process_allow(shifted, key, now - origin, limit, window)
    counters.update(shifted)
    return admitted


def one_count_for_everyone(counters, key, now, limit, window):
    return in_process_allow(counters, "everyone", now, limit, window)


def returns_an_int(counters, key, now, limit, window):
    return int(in_process_allow(counters, key, now, limit, window))


GLOBAL_COUNTERS: dict = {}


def keeps_a_global(counters, key, now, limit, window):
    return in_process_allow(GLOBAL_COUNTERS, key, now, limit, window)


def not_written_yet(counters, key, now, limit, window):
    raise NotImplementedError("allow")


@pytest.mark.parametrize(
    "mistake, caught_by",
    [
        (fixed_window, "the previous window, weighted"),
        (off_by_one, "within one window"),
        (counts_rejected, "rejected requests do not count"),
        (previous_never_fades, "two windows later nothing is left"),
        (windows_from_first_request, "windows start at multiples of the window"),
        (one_count_for_everyone, "each key on its own"),
    ],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_each_mistake_is_caught_by_its_case_and_by_the_random_traces(mistake, caught_by):
    result = expect_fail("allow", mistake, "hand-computed cases: ")
    first_line, details = result.message.split("\n", 1)
    assert repr(caught_by) in first_line  # among the cases that go wrong
    assert details.startswith("  the first: case ")
    assert "before it:" in details and "called:   allow(counters, " in details
    assert "hint:     " in details
    expect_fail("allow_random_traces", mistake, "than the reference SlidingWindowCounter")


def test_random_trace_failure_explains_the_reference_estimate():
    result = expect_fail("allow_random_traces", fixed_window, "the reference's estimate there:")
    assert "returned: True" in result.message and "expected: False" in result.message


def test_wrong_types_global_state_and_stubs_get_clear_messages():
    expect_fail("allow", returns_an_int, "expected True or False, got int", "return a bool")
    for check in ("allow", "allow_random_traces"):
        GLOBAL_COUNTERS.clear()
        expect_fail(check, keeps_a_global, "kept nothing in `counters`")
        result = expect_fail(check, not_written_yet, "not implemented yet")
        assert result.message.startswith("not implemented yet\n  called:   allow(counters, ")


def test_checks_never_raise_and_report_a_missing_name():
    results = lab.run_all({})
    assert [r.passed for r in results] == [False] * 5
    assert "`allow` is not defined" in results[0].message
    assert "`redis_allow` is not defined" in results[-1].message
    crash = lab.run("allow", lambda *args: 1 / 0)
    assert "raised ZeroDivisionError" in crash.message


# --- mistakes in part 2 ---------------------------------------------------------------


def read_then_incr(client, key, now, limit, window):
    """The algorithm as three commands, GET, GET, INCR: right alone, racy together."""
    index = math.floor(now / window)
    current = int(client.get(f"naive:{{{key}}}:{index}") or 0)
    previous = int(client.get(f"naive:{{{key}}}:{index - 1}") or 0)
    if previous * (1 - (now / window - index)) + current >= limit:
        return False
    client.incr(f"naive:{{{key}}}:{index}")
    return True


READ_LUA = HEAD + "return tostring(previous * (1 - elapsed) + current)"
WRITE_LUA = "redis.call('INCR', KEYS[1]) return 1"


def two_scripts(client, key, now, limit, window):
    """Lua, but not atomic: one script reads the estimate, another one counts."""
    index = math.floor(now / window)
    keys = [f"rl:{{{key}}}:{index}", f"rl:{{{key}}}:{index - 1}"]
    estimate = float(client.register_script(READ_LUA)(keys=keys, args=[limit, window, now]))
    if estimate >= limit:
        return False
    client.register_script(WRITE_LUA)(keys=keys[:1])
    return True


_LOCK = threading.Lock()


def locked_in_python(client, key, now, limit, window):
    """Atomic for threads of this process only, and three round trips."""
    with _LOCK:
        return read_then_incr(client, key, now, limit, window)


@pytest.mark.parametrize("mistake", [read_then_incr, two_scripts], ids=lambda f: f.__name__)
def test_read_then_write_is_right_alone_and_over_admits_together(mistake):
    alone = run("redis_allow", mistake)
    assert alone.passed, alone.message
    result = expect_fail("redis_allow_concurrency", mistake, "too many", "admitted for a limit")
    assert "returned: " in result.message and "expected: 20" in result.message


def test_the_over_admission_shows_every_time():
    """Rounds of simultaneous requests and a network delay longer than Redis's work make
    the race certain, not lucky (24 admitted in 300 runs out of 300, measured)."""
    for _ in range(2):
        assert hammer(read_then_incr).admitted > 20
    assert hammer(package_redis_allow).admitted == 20


def test_a_python_lock_is_not_enough(monkeypatch):
    """A lock serializes the app servers' decisions: no over-admission, but three round
    trips each (and no protection across machines). Fewer requests, to keep it quick."""
    monkeypatch.setitem(lab_module.CONCURRENCY, "requests", 5)
    result = expect_fail("redis_allow_concurrency", locked_in_python, "one round trip")
    assert "40 decisions sent GET x80, INCRBY x20" in result.message


@pytest.mark.parametrize(
    "lua, caught_by",
    [
        (LUA.replace("current >= limit", "current > limit"), "within one window"),
        (
            LUA.replace("previous * (1 - elapsed) + current", "current"),
            "the previous window, weighted",
        ),
        (
            HEAD + "redis.call('INCR', KEYS[1])\nreturn previous * (1 - elapsed) + current < "
            "limit and 1 or 0",
            "rejected requests do not count",
        ),
    ],
    ids=["off-by-one", "no-weighting", "counts-rejected"],
)
def test_wrong_lua_is_caught_by_its_case(lua, caught_by):
    result = expect_fail("redis_allow", two_key_allow(lua), "hand-computed cases: ")
    assert repr(caught_by) in result.message.split("\n", 1)[0]
    expect_fail("redis_allow_random_traces", two_key_allow(lua), "than the reference")


def lab_lua_skeleton() -> str:
    """The SLIDING_WINDOW_COUNTER_LUA the generated lab gives the learner."""
    lab_notebook = nbformat.read(REPO / "labs" / "02-rate-limiter-lab.ipynb", as_version=4)
    [cell] = [
        cell
        for cell in lab_notebook.cells
        if cell.cell_type == "code" and cell.source.startswith("SLIDING_WINDOW_COUNTER_LUA =")
    ]
    namespace: dict = {}
    exec(cell.source, namespace)
    return namespace["SLIDING_WINDOW_COUNTER_LUA"]


def test_the_labs_lua_skeleton_reads_as_not_implemented_yet():
    skeleton = lab_lua_skeleton()
    assert "YOUR LUA HERE" in skeleton
    for check in REDIS_CHECKS:
        result = expect_fail(check, two_key_allow(skeleton), "not implemented yet")
        assert result.message.startswith("not implemented yet\n  called:   redis_allow(client, ")
        assert "write the Lua script in SLIDING_WINDOW_COUNTER_LUA" in result.message


def test_redis_stub_and_other_mistakes_get_clear_messages():
    def stub(client, key, now, limit, window):
        raise NotImplementedError("redis_allow")

    for check in REDIS_CHECKS:
        expect_fail(check, stub, "not implemented yet")

    own = fresh_redis()

    def ignores_the_client(client, key, now, limit, window):
        return two_key_allow(LUA)(own, key, now, limit, window)

    expect_fail("redis_allow", ignores_the_client, "sent no command through the `client`")
    expect_fail("redis_allow_concurrency", ignores_the_client, "sent no command through")

    def raw_reply(client, key, now, limit, window):
        index = math.floor(now / window)
        keys = [f"r:{{{key}}}:{index}", f"r:{{{key}}}:{index - 1}"]
        return client.register_script(LUA)(keys=keys, args=[limit, window, now])

    expect_fail("redis_allow", raw_reply, "expected True or False, got int", "reply == 1")


def test_hammer_reports_what_it_saw():
    result = hammer(two_key_allow(LUA), threads=4, requests=10, limit=7, latency=0)
    assert (result.admitted, result.requests, result.error) == (7, 40, None)
    assert result.commands == {"EVALSHA": 40} and result.round_trips_per_decision == 1
    assert str(result) == (
        "7 of 40 admitted for a limit of 7; commands per decision: 1 (EVALSHA x40)"
    )

    def breaks(client, key, now, limit, window):
        if key == "shared":
            raise RuntimeError("boom")
        return package_redis_allow(client, key, now, limit, window)

    assert hammer(breaks, threads=2, requests=1, latency=0).error == "RuntimeError: boom"
    result = lab.run("redis_allow_concurrency", breaks)
    assert "raised in one of the 8 threads: RuntimeError: boom" in result.message


def test_hammer_on_a_client_given_restores_it():
    client = fresh_redis()
    original = client.execute_command
    assert hammer(two_key_allow(LUA), client=client, latency=0).admitted == 20
    assert client.execute_command == original
