"""Several app servers, one Redis: the read-modify-write race and two ways to fix it.

A limit of 100 requests a minute per user means 100 across *every* app server, so the
count lives in one shared store. Three ways to keep a fixed-window count there:

- :class:`NaiveFixedWindow`: ``GET`` the count, decide in Python, ``SET`` count + 1. Two
  round trips, and between them another server can read the same count: both admit, both
  write the same ``count + 1``, and one admission is lost (a *lost update*). Concurrent
  servers over-admit.
- The package's :class:`~sysdesign.ratelimit.redis.RedisFixedWindow`: the read, the
  decision and the write are one Lua script, which Redis runs to the end before any other
  command. One round trip, never over-admits.
- :class:`WatchFixedWindow`: optimistic locking. ``WATCH`` the key, ``GET`` it, then
  ``MULTI`` / ``SET`` / ``EXEC``: Redis refuses the ``EXEC`` if the key changed after the
  ``WATCH``, and the server tries again. Never over-admits, without scripting, but costs
  three round trips per attempt and retries grow with contention.

:class:`MultiWindowLimit` checks several windows at once (10 a second *and* 100 a minute)
in one script over several keys: on Redis Cluster those keys must share a hash tag.

:func:`race` runs ``workers`` app servers (threads or processes, each with its own
connection) against one Redis and one key, and returns what they admitted, how many
retries and round trips it took, and how long.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis as redis_py

from sysdesign.ratelimit.algorithms import (
    Decision,
    _check_key,
    _positive_number,
    _whole_number,
    first_admitted_delay,
)
from sysdesign.ratelimit.redis import RedisFixedWindow

STRATEGIES = ("naive", "lua", "watch")
MODES = ("threads", "processes")


def _check_now(now: float | None) -> float:
    """``now`` in seconds; None means this app server's clock."""
    if now is None:
        return time.time()
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise ValueError(f"now must be None (this server's clock) or a finite number, got {now!r}")
    if now < 0:
        raise ValueError(f"now must be at least 0 seconds, got {now!r}")
    return float(now)


class _ReadThenWriteFixedWindow:
    """What the naive and the WATCH limiters share: a fixed window counted in one Redis
    string per key and window, ``<prefix>:{<key>}:<window number>``, that expires when
    its window has passed; the same decisions as the in-process ``FixedWindow`` when one
    server asks at a time."""

    def __init__(
        self,
        client: redis_py.Redis,
        *,
        limit: int,
        window: float,
        prefix: str,
        between_read_and_write: Callable[[], object] | None = None,
    ) -> None:
        self.client = client
        self.limit = _whole_number("limit", limit)
        self.window = _positive_number("window", window)
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
        self.prefix = prefix
        # A hook for demonstrations and tests: what happens between the read and the
        # write (a pause, a barrier). Real servers do work here too: logging, a GC pause.
        self.between_read_and_write = between_read_and_write
        self.round_trips = 0  # requests sent to Redis, counted where they are sent
        self.retries = 0

    def redis_key(self, key: str, now: float) -> str:
        return f"{self.prefix}:{{{_check_key(key)}}}:{math.floor(now / self.window)}"

    def _expiry_ms(self, now: float) -> int:
        """Until the window ends, plus a second for servers whose clocks run behind."""
        window_end = (math.floor(now / self.window) + 1) * self.window
        return max(math.ceil((window_end - now) * 1000), 1) + 1000

    def _rejection(self, now: float) -> Decision:
        """What :class:`~sysdesign.ratelimit.algorithms.FixedWindow` says: wait for the
        next window (to the last bit of the float)."""
        index = math.floor(now / self.window)
        wait = first_admitted_delay(
            lambda t: math.floor(t / self.window) > index, now, (index + 1) * self.window - now
        )
        return Decision(False, 0, wait)

    def _pause(self) -> None:
        if self.between_read_and_write is not None:
            self.between_read_and_write()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(limit={self.limit!r}, window={self.window!r})"


class NaiveFixedWindow(_ReadThenWriteFixedWindow):
    """Read, decide, write: correct on one server, over-admits on several."""

    def __init__(self, client, *, limit, window, prefix="naive", between_read_and_write=None):
        super().__init__(
            client,
            limit=limit,
            window=window,
            prefix=prefix,
            between_read_and_write=between_read_and_write,
        )

    def allow(self, key: str, now: float | None = None) -> Decision:
        now = _check_now(now)
        redis_key = self.redis_key(key, now)
        count = int(self.client.get(redis_key) or 0)  # round trip 1: read
        self.round_trips += 1
        if count >= self.limit:
            return self._rejection(now)
        self._pause()  # another server may read the same count right here
        self.client.set(redis_key, count + 1, px=self._expiry_ms(now))  # round trip 2: write
        self.round_trips += 1
        return Decision(True, self.limit - count - 1, 0.0)


class WatchFixedWindow(_ReadThenWriteFixedWindow):
    """Optimistic locking: WATCH the key, read it, write in MULTI/EXEC; if another server
    changed the key in between, EXEC does nothing and we try again."""

    def __init__(
        self,
        client,
        *,
        limit,
        window,
        prefix="watch",
        max_attempts: int = 1000,
        between_read_and_write=None,
    ):
        super().__init__(
            client,
            limit=limit,
            window=window,
            prefix=prefix,
            between_read_and_write=between_read_and_write,
        )
        self.max_attempts = _whole_number("max_attempts", max_attempts)

    def allow(self, key: str, now: float | None = None) -> Decision:
        now = _check_now(now)
        redis_key = self.redis_key(key, now)
        with self.client.pipeline(transaction=True) as pipe:
            for _attempt in range(self.max_attempts):
                try:
                    pipe.watch(redis_key)  # round trip 1
                    count = int(pipe.get(redis_key) or 0)  # round trip 2
                    self.round_trips += 2
                    if count >= self.limit:
                        pipe.unwatch()  # round trip 3 (a rejection writes nothing)
                        self.round_trips += 1
                        return self._rejection(now)
                    self._pause()
                    pipe.multi()
                    pipe.set(redis_key, count + 1, px=self._expiry_ms(now))
                    self.round_trips += 1
                    pipe.execute()  # round trip 3: MULTI, SET, EXEC in one write
                    return Decision(True, self.limit - count - 1, 0.0)
                except redis_py.WatchError:  # the key changed after WATCH: nothing written
                    self.retries += 1
        raise RuntimeError(
            f"gave up after {self.max_attempts} attempts: the key changed every time "
            "(raise max_attempts, or use the Lua script, which never retries)"
        )


class MultiWindowLimit:
    """Several fixed windows checked and counted together in one Lua script: admit only
    if every window has room (``limits={1: 10, 60: 100}``: 10 a second and 100 a
    minute). One decision touches one key per window: with ``hash_tag=True`` the keys are
    ``<prefix>:{<key>}:<window>s:<n>`` and share a Redis Cluster slot; with
    ``hash_tag=False`` (``<prefix>:<key>:<window>s:<n>``) they land in different slots and
    a cluster refuses the script (CROSSSLOT).
    """

    LUA = """
-- KEYS[i]: the counter of window i. ARGV: limit_1, expiry_ms_1, limit_2, expiry_ms_2, ...
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[2 * i - 1]) then
    return 0
  end
end
for i, key in ipairs(KEYS) do
  redis.call('INCR', key)
  redis.call('PEXPIRE', key, ARGV[2 * i])
end
return 1
"""

    def __init__(
        self,
        client: redis_py.Redis,
        *,
        limits: dict[float, int],
        prefix: str = "multiwindow",
        hash_tag: bool = True,
    ) -> None:
        if not isinstance(limits, dict) or not limits:
            raise ValueError(
                f"limits must be a non-empty dict {{window seconds: limit}}, got {limits!r}"
            )
        self.limits = {
            _positive_number("window", window): _whole_number("limit", limit)
            for window, limit in limits.items()
        }
        self.client = client
        self.prefix = prefix
        self.hash_tag = hash_tag
        self._script = client.register_script(self.LUA)

    def redis_keys(self, key: str, now: float) -> list[str]:
        tagged = f"{{{_check_key(key)}}}" if self.hash_tag else key
        return [
            f"{self.prefix}:{tagged}:{window:g}s:{math.floor(now / window)}"
            for window in self.limits
        ]

    def allow(self, key: str, now: float | None = None) -> bool:
        now = _check_now(now)
        args = []
        for window, limit in self.limits.items():
            window_end = (math.floor(now / window) + 1) * window
            args += [limit, max(math.ceil((window_end - now) * 1000), 1) + 1000]
        return bool(self._script(keys=self.redis_keys(key, now), args=args))


# --- many app servers at once ---------------------------------------------------------


def make_limiter(
    strategy: str,
    client: redis_py.Redis,
    *,
    limit: int,
    window: float,
    prefix: str,
    between_read_and_write: Callable[[], object] | None = None,
):
    """The fixed-window limiter of ``strategy``: ``"naive"``, ``"lua"`` (the package's
    :class:`RedisFixedWindow`: nothing can run between its read and its write, so it
    takes no ``between_read_and_write``) or ``"watch"``."""
    if strategy == "naive":
        return NaiveFixedWindow(
            client,
            limit=limit,
            window=window,
            prefix=prefix,
            between_read_and_write=between_read_and_write,
        )
    if strategy == "watch":
        return WatchFixedWindow(
            client,
            limit=limit,
            window=window,
            prefix=prefix,
            between_read_and_write=between_read_and_write,
        )
    if strategy == "lua":
        return RedisFixedWindow(client, limit=limit, window=window, prefix=prefix)
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")


@dataclass(frozen=True)
class RaceResult:
    """What ``workers`` app servers admitted from one shared limit of ``limit``."""

    strategy: str
    mode: str
    workers: int
    limit: int
    decisions: int  # requests decided, all workers together
    admitted: int
    admitted_per_worker: tuple[int, ...]
    retries: int  # WATCH conflicts: attempts thrown away and made again
    round_trips: int  # requests sent to Redis
    seconds: float  # from the common start to the last worker's last decision

    @property
    def over_admission(self) -> float:
        """``admitted / limit``: 1.0 is exact, 2.0 let twice the limit through."""
        return self.admitted / self.limit

    @property
    def decisions_per_second(self) -> float:
        return self.decisions / self.seconds if self.seconds > 0 else math.inf

    @property
    def round_trips_per_decision(self) -> float:
        return self.round_trips / self.decisions

    @property
    def retries_per_decision(self) -> float:
        return self.retries / self.decisions


def _connect(url: str | None) -> redis_py.Redis:
    from sysdesign import store

    return store.connect(url) if url is not None else store.connect()


def _app_server(
    strategy: str,
    url: str | None,
    settings: dict,
    requests: int,
    start,
    lockstep,
    think_time: float,
) -> tuple[int, int, int, float]:
    """One app server: its own connection, then ``requests`` decisions on the shared key,
    as fast as it can. ``start`` is a barrier (all servers begin together); ``lockstep``
    a barrier between each read and write, or None. Returns (admitted, retries,
    round trips, seconds)."""
    client = _connect(url)
    try:
        # Warm up outside the race: open the connection (and load the Lua script).
        warm = {**settings, "prefix": settings["prefix"] + "-warm-up"}
        make_limiter(strategy, client, **warm).allow("warm-up", 0.0)
        between = None
        if lockstep is not None:
            between = lockstep.wait
        elif think_time > 0:
            between = lambda: time.sleep(think_time)  # noqa: E731
        limiter = make_limiter(strategy, client, **settings, between_read_and_write=between)
        start.wait()
        began = time.perf_counter()
        admitted = sum(bool(limiter.allow("shared", 0.0)) for _ in range(requests))
        seconds = time.perf_counter() - began
    except BaseException:
        for barrier in (start, lockstep):  # do not leave the others waiting for this one
            if barrier is not None:
                barrier.abort()
        raise
    finally:
        client.close()
    round_trips = getattr(limiter, "round_trips", requests)  # Lua: one EVALSHA each
    return admitted, getattr(limiter, "retries", 0), round_trips, seconds


def _process_main(queue, index: int, args: tuple) -> None:
    try:
        queue.put((index, _app_server(*args), None))
    except BaseException as exc:  # report it; the parent raises
        queue.put((index, None, f"{type(exc).__name__}: {exc}"))


def race(
    strategy: str,
    *,
    url: str | None = None,
    workers: int = 8,
    requests_per_worker: int = 100,
    limit: int = 100,
    mode: str = "threads",
    think_time: float = 0.0,
    lockstep: bool = False,
    timeout: float = 60.0,
) -> RaceResult:
    """``workers`` app servers share one limit of ``limit`` requests a window and each
    asks ``requests_per_worker`` times, all for one key in one window (time is fixed, so
    the only thing that can vary is how their commands interleave).

    - ``url``: the Redis to share (``None``: ``sysdesign.store.connect()``'s choice, the
      embedded fakeredis unless ``REDIS_URL`` is set). Processes need a real server.
    - ``mode``: ``"threads"`` or ``"processes"`` (separate interpreters, like separate
      app servers; forked on Linux).
    - ``think_time``: seconds each server spends between its read and its write
      (``time.sleep``; a log line, a GC pause, a slow network).
    - ``lockstep``: the worst interleaving, on purpose: every server reads, then all
      wait for each other, then all write. Needs ``requests_per_worker >= limit``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        raise ValueError(f"workers must be a whole number from 1 to 64, got {workers!r}")
    _whole_number("requests_per_worker", requests_per_worker)
    _whole_number("limit", limit)
    if (
        isinstance(think_time, bool)
        or not isinstance(think_time, int | float)
        or not 0 <= think_time <= 1
    ):
        raise ValueError(f"think_time must be a number of seconds from 0 to 1, got {think_time!r}")
    if lockstep and think_time:
        raise ValueError("choose lockstep=True or a think_time, not both")
    if lockstep and requests_per_worker < limit:
        raise ValueError(
            f"lockstep needs requests_per_worker >= limit (every server must still be "
            f"asking while the others wait for it), got {requests_per_worker} < {limit}"
        )
    if url is None:
        from sysdesign import store

        url = os.environ.get(store.REDIS_URL_ENV, "").strip() or None
    if mode == "processes" and url is None:
        raise ValueError(
            "mode='processes' needs a real Redis that every process can reach: pass url= "
            "(e.g. sysdesign.store.RedisServer().start().url) or set REDIS_URL; the "
            "embedded fakeredis lives inside one process"
        )
    # A fresh prefix per race: no state left over from an earlier one.
    settings = {"limit": limit, "window": 60.0, "prefix": f"race-{uuid.uuid4().hex[:12]}"}
    if mode == "threads":
        start = threading.Barrier(workers, timeout=timeout)
        step = threading.Barrier(workers, timeout=timeout) if lockstep else None
        results: list = [None] * workers
        errors: list[str] = []

        def run(index: int) -> None:
            try:
                results[index] = _app_server(
                    strategy, url, settings, requests_per_worker, start, step, think_time
                )
            except BaseException as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout)
    else:
        context = multiprocessing.get_context(
            "fork" if sys.platform.startswith("linux") else "spawn"
        )
        start = context.Barrier(workers, timeout=timeout)
        step = context.Barrier(workers, timeout=timeout) if lockstep else None
        queue = context.Queue()
        args = (strategy, url, settings, requests_per_worker, start, step, think_time)
        processes = [
            context.Process(target=_process_main, args=(queue, i, args), daemon=True)
            for i in range(workers)
        ]
        for process in processes:
            process.start()
        results, errors = [None] * workers, []
        try:
            for _ in processes:
                index, result, error = queue.get(timeout=timeout)
                results[index] = result
                if error:
                    errors.append(error)
        finally:
            for process in processes:
                process.join(5)
                if process.is_alive():
                    process.kill()
                    process.join()
    if errors or any(result is None for result in results):
        raise RuntimeError(f"an app server failed: {errors[0] if errors else 'timed out'}")
    admitted, retries, round_trips, seconds = zip(*results, strict=True)
    return RaceResult(
        strategy=strategy,
        mode=mode,
        workers=workers,
        limit=limit,
        decisions=workers * requests_per_worker,
        admitted=sum(admitted),
        admitted_per_worker=tuple(admitted),
        retries=sum(retries),
        round_trips=sum(round_trips),
        seconds=max(seconds),
    )


# --- the cost of being right, as contention grows ---------------------------------------


def measure_contention(
    *,
    url: str | None = None,
    mode: str = "threads",
    workers: tuple[int, ...] = (1, 2, 4, 8),
    requests_per_worker: int = 200,
    strategies: tuple[str, ...] = STRATEGIES,
) -> list[RaceResult]:
    """One :func:`race` per strategy and number of app servers, with a limit no one
    reaches: every request is admitted, so every decision writes the one shared key
    (the most contention there can be). Times are measured: they depend on the machine."""
    return [
        race(
            strategy,
            url=url,
            mode=mode,
            workers=count,
            requests_per_worker=requests_per_worker,
            limit=count * requests_per_worker,
        )
        for strategy in strategies
        for count in workers
    ]


def contention_figure(results: list[RaceResult]):
    """Decisions per second against the number of app servers, one line per strategy."""
    from sysdesign.figures import new_figure

    names = {"naive": "naive (2 round trips, wrong)", "lua": "Lua (1 round trip)"}
    names["watch"] = "WATCH (3 round trips per attempt)"
    data = []
    for strategy in dict.fromkeys(result.strategy for result in results):
        rows = [result for result in results if result.strategy == strategy]
        data.append(
            dict(
                type="scatter",
                mode="lines+markers",
                name=names.get(strategy, strategy),
                x=[result.workers for result in rows],
                y=[round(result.decisions_per_second) for result in rows],
                customdata=[round(result.retries_per_decision, 2) for result in rows],
                hovertemplate="%{x} servers: %{y} decisions/s, %{customdata} retries/decision",
            )
        )
    return new_figure(
        "Decisions per second on one shared key",
        height=340,
        data=data,
        xaxis=dict(title="app servers", type="log", tickvals=sorted({r.workers for r in results})),
        yaxis=dict(title="decisions per second", rangemode="tozero"),
    )
