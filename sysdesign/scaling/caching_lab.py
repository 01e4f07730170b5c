"""Checks for the LRU-with-TTL cache lab (``labs/03-lru-ttl-cache-lab.ipynb``).

The learner writes one class::

    class LRUCache:
        def __init__(self, capacity, ttl): ...
        def get(self, key, now): ...          # the value, or None (missing or expired)
        def put(self, key, value, now): ...
        def __len__(self): ...

An entry written at time t is fresh while ``now < t + ttl``; a read does not extend its
life, a write does. When a put would make the cache hold more than ``capacity`` entries,
the least recently used entry (read or written longest ago) is evicted.

:data:`EVICTION_CASES` and :data:`EXPIRY_CASES` are hand-worked traces (each step with
the answer it must give); ``tests/test_caching_lab.py`` runs them on the package's own
:class:`sysdesign.scaling.caching.LRUCache`, which passes every check, and on broken
caches (no eviction, FIFO order, TTL ignored, a list scanned on every access), each
caught. The last check measures time per operation at 1,000 and 100,000 entries.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sysdesign.grading import CheckFailed, Lab, call, describe_call

lab = Lab("lru-ttl-cache", "An LRU cache with expiry (TTL) and an injected clock")

LONG_TTL = 1e9  # "never expires" in the eviction cases


@dataclass(frozen=True)
class CacheCase:
    """``steps`` run in order on ``LRUCache(capacity, ttl)``: ``("put", key, value, now)``
    or ``("get", key, now, expected)``. ``hint`` explains the answers."""

    name: str
    capacity: int
    ttl: float
    steps: tuple[tuple, ...]
    hint: str


EVICTION_CASES: tuple[CacheCase, ...] = (
    CacheCase(
        "the least recently used entry goes first",
        capacity=2,
        ttl=LONG_TTL,
        # a, b written; reading a makes b the least recently used, so c evicts b.
        steps=(
            ("put", "a", 1, 0.0),
            ("put", "b", 2, 1.0),
            ("get", "a", 2.0, 1),
            ("put", "c", 3, 3.0),
            ("get", "b", 4.0, None),
            ("get", "a", 5.0, 1),
            ("get", "c", 6.0, 3),
        ),
        hint="a read (get) makes an entry the most recently used; evict the one used "
        "longest ago, not the one written first",
    ),
    CacheCase(
        "writing a key again updates it and makes it recent",
        capacity=2,
        ttl=LONG_TTL,
        steps=(
            ("put", "a", 1, 0.0),
            ("put", "b", 2, 1.0),
            ("put", "a", 10, 2.0),
            ("put", "c", 3, 3.0),
            ("get", "a", 4.0, 10),
            ("get", "b", 5.0, None),
            ("get", "c", 6.0, 3),
        ),
        hint="put on a key that is already there replaces its value, does not add a second "
        "entry, and makes it the most recently used",
    ),
    CacheCase(
        "a miss changes nothing",
        capacity=2,
        ttl=LONG_TTL,
        # The miss on x must not take a place; c then evicts a (used longest ago).
        steps=(
            ("put", "a", 1, 0.0),
            ("put", "b", 2, 1.0),
            ("get", "x", 2.0, None),
            ("put", "c", 3, 3.0),
            ("get", "a", 4.0, None),
            ("get", "b", 5.0, 2),
            ("get", "c", 6.0, 3),
        ),
        hint="get on a missing key returns None and stores nothing",
    ),
    CacheCase(
        "capacity 1 keeps only the last write",
        capacity=1,
        ttl=LONG_TTL,
        steps=(
            ("put", "a", 1, 0.0),
            ("put", "b", 2, 1.0),
            ("get", "a", 2.0, None),
            ("get", "b", 3.0, 2),
        ),
        hint="with room for one entry, every new key evicts the previous one",
    ),
    CacheCase(
        "a longer trace",
        capacity=3,
        ttl=LONG_TTL,
        # After the reads the order (oldest first) is b, c, a; d evicts b; reading c
        # gives a, d, c; e evicts a.
        steps=(
            ("put", "a", 1, 0.0),
            ("put", "b", 2, 1.0),
            ("put", "c", 3, 2.0),
            ("get", "a", 3.0, 1),
            ("put", "d", 4, 4.0),
            ("get", "b", 5.0, None),
            ("get", "c", 6.0, 3),
            ("put", "e", 5, 7.0),
            ("get", "a", 8.0, None),
            ("get", "d", 9.0, 4),
            ("get", "c", 10.0, 3),
            ("get", "e", 11.0, 5),
        ),
        hint="keep the keys in order of last use (read or write); evict from the old end",
    ),
)

EXPIRY_CASES: tuple[CacheCase, ...] = (
    CacheCase(
        "an entry expires ttl seconds after it was written",
        capacity=10,
        ttl=10.0,
        steps=(
            ("put", "a", 1, 100.0),
            ("get", "a", 109.5, 1),
            ("get", "a", 110.0, None),
            ("get", "a", 111.0, None),
        ),
        hint="written at t, an entry is fresh while now < t + ttl; at now = t + ttl it has "
        "expired (use the `now` you are given, never the wall clock)",
    ),
    CacheCase(
        "reading does not extend an entry's life",
        capacity=10,
        ttl=10.0,
        steps=(
            ("put", "a", 1, 0.0),
            ("get", "a", 5.0, 1),
            ("get", "a", 9.0, 1),
            ("get", "a", 12.0, None),
        ),
        hint="remember when the entry was written (or when it expires); a get must not "
        "move that time",
    ),
    CacheCase(
        "writing again starts a new life",
        capacity=10,
        ttl=10.0,
        steps=(
            ("put", "a", 1, 0.0),
            ("put", "a", 2, 8.0),
            ("get", "a", 15.0, 2),
            ("get", "a", 18.0, None),
        ),
        hint="a put stores the new value and a new expiry time, now + ttl",
    ),
    CacheCase(
        "keys expire on their own schedules, at any time of day",
        capacity=10,
        ttl=60.0,
        steps=(
            ("put", "a", 1, 1_700_000_000.0),
            ("put", "b", 2, 1_700_000_030.0),
            ("get", "a", 1_700_000_059.0, 1),
            ("get", "a", 1_700_000_060.0, None),
            ("get", "b", 1_700_000_089.0, 2),
            ("get", "b", 1_700_000_090.0, None),
        ),
        hint="each entry keeps its own expiry time, now + ttl at its last put",
    ),
    CacheCase(
        "an expired entry is not returned even when the cache is not full",
        capacity=2,
        ttl=1.0,
        steps=(
            ("put", "a", 1, 0.0),
            ("put", "b", 2, 0.5),
            ("get", "a", 1.2, None),
            ("get", "b", 1.2, 2),
            ("get", "b", 1.5, None),
        ),
        hint="check the expiry time on every get",
    ),
)


def _shown(step: tuple) -> str:
    if step[0] == "put":
        _, key, value, now = step
        return f"put({key!r}, {value!r}, now={now:g})"
    _, key, now, _expected = step
    return f"get({key!r}, now={now:g})"


def run_case(LRUCache: Any, case: CacheCase) -> None:  # noqa: N803 (the learner's class)
    """Run one case's steps; the first wrong answer raises :class:`CheckFailed`."""
    made = describe_call(LRUCache, (), dict(capacity=case.capacity, ttl=case.ttl))
    cache = call(LRUCache, capacity=case.capacity, ttl=case.ttl, hint=case.hint)
    done: list[str] = [made]
    for step in case.steps:
        done.append(_shown(step))
        if step[0] == "put":
            _, key, value, now = step
            call(cache.put, key, value, now, hint=case.hint)
            continue
        _, key, now, expected = step
        returned = call(cache.get, key, now, hint=case.hint)
        if returned != expected or (returned is None) != (expected is None):
            steps = "; ".join(done[-8:])
            raise CheckFailed(
                f"wrong result in case {case.name!r}",
                call=steps,
                returned=returned,
                expected=expected,
                hint=case.hint,
            )


def _run_cases(LRUCache: Any, cases: Sequence[CacheCase]) -> str:  # noqa: N803
    for case in cases:
        run_case(LRUCache, case)
    return f"{len(cases)} cases, {sum(len(c.steps) for c in cases)} steps"


@lab.define(hint="evict the least recently used entry: reads and writes both count as a use")
def check_eviction_order(LRUCache):  # noqa: N803
    return _run_cases(LRUCache, EVICTION_CASES)


@lab.define(hint="store each entry's expiry time (now + ttl) next to its value")
def check_expiry(LRUCache):  # noqa: N803
    return _run_cases(LRUCache, EXPIRY_CASES)


def _length(cache: Any, shown: str) -> int:
    size = call(len, cache, hint="define __len__(self): the number of entries stored")
    if isinstance(size, bool) or not isinstance(size, int):
        raise CheckFailed("len(cache) must be a whole number", call=shown, returned=size)
    return size


@lab.define(hint="when a put would make it hold capacity + 1 entries, evict one first")
def check_capacity(LRUCache):  # noqa: N803
    rng = random.Random(3)
    for capacity in (1, 2, 5, 8):
        shown = describe_call(LRUCache, (), dict(capacity=capacity, ttl=LONG_TTL))
        cache = call(LRUCache, capacity=capacity, ttl=LONG_TTL)
        # distinct keys: the cache fills up to capacity and stays exactly full
        for n in range(1, 3 * capacity + 1):
            call(cache.put, f"k{n}", n, float(n))
            size = _length(cache, shown)
            if size != min(n, capacity):
                raise CheckFailed(
                    f"after {n} puts of different keys, len(cache) is wrong",
                    call=f"{shown}, then put('k1' ... 'k{n}')",
                    returned=size,
                    expected=min(n, capacity),
                    hint="hold at most capacity entries, and never evict while there is room",
                )
        # a random mix of reads and writes over 20 keys: never more than capacity
        for step in range(300):
            key = rng.randrange(20)
            if rng.random() < 0.5:
                call(cache.put, key, step, 1000.0 + step)
            else:
                call(cache.get, key, 1000.0 + step)
            size = _length(cache, shown)
            if size > capacity:
                raise CheckFailed(
                    f"the cache grew past its capacity after {step + 1} random reads and writes",
                    call=shown,
                    returned=size,
                    expected=f"at most {capacity}",
                )
    return "capacities 1, 2, 5 and 8"


SMALL, LARGE = 1_000, 100_000
TIMED_OPS = 200  # a get and a put each
REPEATS = 5
MAX_SLOWDOWN = 10.0  # O(1) caches measure 2-4x here (CPU caches); a list scan, 100x+


def time_per_operation(LRUCache: Any, size: int, *, seed: int = 0) -> float:  # noqa: N803
    """Median seconds per operation (a get of a random stored key, then a put of a new key
    that evicts) on a full cache of ``size`` entries, over :data:`REPEATS` runs."""
    cache = LRUCache(capacity=size, ttl=LONG_TTL)
    for key in range(size):
        cache.put(key, key, 0.0)
    rng = random.Random(seed)
    samples = []
    next_key = size
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(REPEATS):
            keys = [rng.randrange(next_key - size, next_key) for _ in range(TIMED_OPS)]
            start = time.perf_counter()
            for key in keys:
                cache.get(key, 1.0)
                cache.put(next_key, 0, 1.0)
                next_key += 1
            samples.append((time.perf_counter() - start) / (2 * TIMED_OPS))
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(samples)


@lab.define(
    hint="an OrderedDict (move_to_end, popitem(last=False)) or a dict plus a doubly linked "
    "list makes get and put O(1); searching or removing from a list is O(n)",
    time_limit=30.0,
)
def check_constant_time(LRUCache):  # noqa: N803
    shown = describe_call(LRUCache, (), dict(capacity=SMALL, ttl=LONG_TTL))
    smoke = call(LRUCache, capacity=2, ttl=LONG_TTL)
    call(smoke.put, "a", 1, 0.0)
    call(smoke.get, "a", 0.0)
    try:
        small = time_per_operation(LRUCache, SMALL)
        large = time_per_operation(LRUCache, LARGE)
    except Exception as exc:  # noqa: BLE001 - any failure is feedback
        raise CheckFailed(f"raised {type(exc).__name__}: {exc}", call=shown) from None
    ratio = large / small
    detail = (
        f"{small * 1e6:.2f} µs per operation at {SMALL:,} entries, "
        f"{large * 1e6:.2f} µs at {LARGE:,}"
    )
    if ratio > MAX_SLOWDOWN:
        raise CheckFailed(
            f"operations get {ratio:.0f}x slower as the cache grows 100x ({detail})",
            expected=f"at most {MAX_SLOWDOWN:g}x: O(1) per get and put",
        )
    return f"flat: within {MAX_SLOWDOWN:g}x from {SMALL:,} to {LARGE:,} entries"
