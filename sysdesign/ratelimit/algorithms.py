"""Five rate limiters that keep their state in this Python process.

Every limiter answers one question, ``allow(key, now)``: may the client ``key`` make a
request at time ``now`` (seconds, a float)? The answer is a :class:`Decision`, truthy
when the request is admitted, which also says how many more requests would be admitted
right now (``remaining``) and, for a rejected request, how long to wait before one would
be (``retry_after``). A rejected request never uses up any capacity.

- :class:`TokenBucket`: a bucket of ``capacity`` tokens refilled at ``refill_rate`` per
  second; a request takes one token. Bursts up to ``capacity``, then ``refill_rate``.
- :class:`LeakingBucket`: a queue of at most ``capacity`` requests that drains at
  ``leak_rate`` per second. It admits what the token bucket admits (but for a rounding
  tie, see the class); what it adds is *when* each request leaves the queue
  (``Decision.departs_at``): evenly spaced.
- :class:`FixedWindow`: at most ``limit`` requests per window ``[k*window, (k+1)*window)``.
  Cheap, but up to ``2*limit`` requests pass in a span of one window across a boundary.
- :class:`SlidingWindowLog`: at most ``limit`` requests in any ``window`` seconds: exact,
  at the price of one stored timestamp per admitted request.
- :class:`SlidingWindowCounter`: the fixed windows' two counters, blended into an
  estimate of the sliding count; two numbers per key instead of a log.

Time is an argument, never read from a clock, so a notebook, a test and a benchmark get
the same answers from the same inputs. One limiter reads one clock: ``now`` must never go
backwards (a ``ValueError`` says so; use ``time.monotonic()``). ``sysdesign.ratelimit.redis``
has the same five limiters with the state in Redis, where many servers share it.

Memory stays bounded: a key whose state has fully recovered (a full bucket, an empty
queue, a window that has passed) behaves exactly like a key never seen, so it is dropped.

``retry_after`` is exact in floating point: retrying at ``now + retry_after`` is admitted,
any visibly earlier time is not (see :func:`first_admitted_delay`).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import simpy

from sysdesign.arguments import positive_number, whole_number


@dataclass(frozen=True)
class Decision:
    """A limiter's answer: ``bool(decision)`` is True when the request is admitted.

    ``remaining``: how many more requests would be admitted at this same instant.
    ``retry_after``: seconds until a request would be admitted (0 when this one was).
    ``departs_at``: for the leaking bucket only, when this request leaves the queue.
    """

    admitted: bool
    remaining: int
    retry_after: float
    departs_at: float | None = None

    def __bool__(self) -> bool:
        return self.admitted


# --- checking parameters -------------------------------------------------------------


_whole_number = whole_number
_positive_number = positive_number


def _check_key(key: str) -> str:
    if not isinstance(key, str):
        raise ValueError(f"key must be a string (a user id, an IP address...), got {key!r}")
    return key


def _check_now(now: float) -> float:
    if (
        isinstance(now, bool)
        or not isinstance(now, int | float)
        or not math.isfinite(now)
        or now < 0
    ):
        raise ValueError(f"now must be a finite number of seconds, at least 0, got {now!r}")
    return now


# --- retry_after, exactly -------------------------------------------------------------


def first_admitted_delay(admits: Callable[[float], bool], now: float, estimate: float) -> float:
    """The delay ``d`` after ``now`` at which ``admits(now + d)`` first holds.

    ``estimate`` is the answer worked out with real numbers (e.g. ``(1 - tokens) /
    refill_rate``). Floating point can land it a hair early, so that a client retrying at
    exactly ``now + estimate`` would be rejected; this steps forward, by steps of the
    size of a rounding error, until the very check ``allow()`` will make passes.
    """
    delay = max(estimate, 0.0)
    step = max(now + delay, 1.0) * 2.0**-52
    while not admits(now + delay):
        delay += step
        step *= 2
    return delay


# --- what every limiter shares: per-key state, bounded memory, a clock that only goes on


class _PerKeyLimiter:
    """Keeps one state per key, drops the states that have fully recovered."""

    def __init__(self) -> None:
        # Ordered by last admission, oldest first: a state at the front that has not
        # recovered yet means none behind it has been idle longer, so the sweep stops.
        self._states: OrderedDict[str, object] = OrderedDict()
        self._latest = -math.inf

    def allow(self, key: str, now: float) -> Decision:
        """Admit or reject one request of ``key`` at time ``now`` (seconds)."""
        _check_key(key)
        _check_now(now)
        if now < self._latest:
            raise ValueError(
                f"now must not go backwards: got {now!r} after {self._latest!r} "
                "(an in-process limiter reads one clock; use time.monotonic())"
            )
        self._latest = now
        self._forget_recovered(now)
        decision, state = self._decide(self._states.get(key), now)
        if decision.admitted:
            self._states.pop(key, None)
            self._states[key] = state
        return decision

    def __len__(self) -> int:
        """How many keys this limiter holds state for."""
        return len(self._states)

    def _forget_recovered(self, now: float) -> None:
        while self._states:
            key, state = next(iter(self._states.items()))
            if not self._recovered(state, now):
                break
            del self._states[key]

    def _decide(self, state, now: float) -> tuple[Decision, object]:
        """``(decision, state to keep if admitted)``; ``state`` is None for a new key."""
        raise NotImplementedError

    def _recovered(self, state, now: float) -> bool:
        """True when ``state`` now decides exactly like a key never seen."""
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


# --- the five algorithms --------------------------------------------------------------


class TokenBucket(_PerKeyLimiter):
    """``capacity`` tokens, refilled at ``refill_rate`` tokens per second; a request takes one.

    The bucket starts full. State per key: ``(tokens, time of the last admission)``;
    tokens at a later time are ``min(capacity, tokens + elapsed * refill_rate)``.
    """

    def __init__(self, *, capacity: int, refill_rate: float) -> None:
        super().__init__()
        self.capacity = _whole_number("capacity", capacity)
        self.refill_rate = _positive_number("refill_rate", refill_rate)

    def _tokens_at(self, state: tuple[float, float], t: float) -> float:
        tokens, last = state
        return min(self.capacity, tokens + (t - last) * self.refill_rate)

    def _decide(self, state, now):
        tokens = self.capacity if state is None else self._tokens_at(state, now)
        if tokens >= 1:
            tokens -= 1
            return Decision(True, math.floor(tokens), 0.0), (tokens, now)
        wait = first_admitted_delay(
            lambda t: self._tokens_at(state, t) >= 1, now, (1 - tokens) / self.refill_rate
        )
        return Decision(False, 0, wait), state

    def _recovered(self, state, now):
        return self._tokens_at(state, now) >= self.capacity


class LeakingBucket(_PerKeyLimiter):
    """A FIFO queue of at most ``capacity`` requests, drained at ``leak_rate`` per second.

    An admitted request joins the queue and leaves it ``1 / leak_rate`` seconds after the
    request ahead of it left (or after it arrived, if the queue was empty):
    ``departs_at = max(now, previous departure) + 1 / leak_rate``. It occupies the queue
    until then. A request that finds the queue full is rejected.

    It admits the requests a token bucket of the same capacity and rate admits (the leaky
    bucket "as a meter"); the difference is the output, evenly spaced. The one exception
    is a floating-point tie: a request arriving at the very instant a slot frees (evenly
    spaced times can do that) may round one way here and the other way in the token
    bucket, so the two can differ by one request at such an instant.
    State per key: the departure times of the requests still queued.
    """

    def __init__(self, *, capacity: int, leak_rate: float) -> None:
        super().__init__()
        self.capacity = _whole_number("capacity", capacity)
        self.leak_rate = _positive_number("leak_rate", leak_rate)

    def _decide(self, queue, now):
        queue = deque() if queue is None else queue
        while queue and queue[0] <= now:  # these requests have left the bucket
            queue.popleft()
        if len(queue) < self.capacity:
            start = max(now, queue[-1]) if queue else now
            departs_at = start + 1 / self.leak_rate
            queue.append(departs_at)
            return Decision(True, self.capacity - len(queue), 0.0, departs_at), queue
        head = queue[0]
        wait = first_admitted_delay(lambda t: head <= t, now, head - now)
        return Decision(False, 0, wait), queue

    def _recovered(self, queue, now):
        return not queue or queue[-1] <= now


class FixedWindow(_PerKeyLimiter):
    """At most ``limit`` requests per window; windows are ``[k*window, (k+1)*window)``.

    State per key: ``(window number k, requests admitted in it)``.
    """

    def __init__(self, *, limit: int, window: float) -> None:
        super().__init__()
        self.limit = _whole_number("limit", limit)
        self.window = _positive_number("window", window)

    def _decide(self, state, now):
        index = math.floor(now / self.window)
        count = state[1] if state is not None and state[0] == index else 0
        if count < self.limit:
            count += 1
            return Decision(True, self.limit - count, 0.0), (index, count)
        wait = first_admitted_delay(
            lambda t: math.floor(t / self.window) > index, now, (index + 1) * self.window - now
        )
        return Decision(False, 0, wait), state

    def _recovered(self, state, now):
        return math.floor(now / self.window) > state[0]


class SlidingWindowLog(_PerKeyLimiter):
    """At most ``limit`` admitted requests in the last ``window`` seconds, exactly.

    The last ``window`` seconds are the interval ``(now - window, now]``: a request
    admitted at ``t`` stops counting at ``t + window`` exactly, so retrying then works.
    (``limits``' moving window counts ``[now - window, now]``: the two disagree only for
    a request arriving exactly ``window`` after an admitted one.)
    State per key: the times of the admitted requests still in the window.
    """

    def __init__(self, *, limit: int, window: float) -> None:
        super().__init__()
        self.limit = _whole_number("limit", limit)
        self.window = _positive_number("window", window)

    def _decide(self, log, now):
        log = deque() if log is None else log
        while log and log[0] <= now - self.window:  # out of the window
            log.popleft()
        if len(log) < self.limit:
            log.append(now)
            return Decision(True, self.limit - len(log), 0.0), log
        oldest = log[0]
        wait = first_admitted_delay(
            lambda t: oldest <= t - self.window, now, oldest + self.window - now
        )
        return Decision(False, 0, wait), log

    def _recovered(self, log, now):
        return not log or log[-1] <= now - self.window


class SlidingWindowCounter(_PerKeyLimiter):
    """The sliding count, estimated from two fixed-window counters.

    Windows are aligned as in :class:`FixedWindow`. With ``elapsed`` the fraction of the
    current window gone by, ``estimate = previous * (1 - elapsed) + current``, as if the
    previous window's requests had been spread evenly over it; admit if
    ``estimate < limit``. State per key: ``(window number, previous, current)``.
    """

    def __init__(self, *, limit: int, window: float) -> None:
        super().__init__()
        self.limit = _whole_number("limit", limit)
        self.window = _positive_number("window", window)

    def _counts_at(self, state, t: float) -> tuple[int, int, int]:
        """``(window number, previous count, current count)`` at time ``t``."""
        index = math.floor(t / self.window)
        if state is None:
            return index, 0, 0
        stored_index, previous, current = state
        if index == stored_index:
            return index, previous, current
        if index == stored_index + 1:
            return index, current, 0
        return index, 0, 0

    def _estimate_at(self, state, t: float) -> float:
        index, previous, current = self._counts_at(state, t)
        elapsed = t / self.window - index
        return previous * (1 - elapsed) + current

    def _decide(self, state, now):
        index, previous, current = self._counts_at(state, now)
        estimate = self._estimate_at(state, now)
        if estimate < self.limit:
            remaining = math.ceil(self.limit - estimate) - 1
            return Decision(True, remaining, 0.0), (index, previous, current + 1)
        if current < self.limit:  # wait for the previous window's share to fade enough
            target = (index + 1 - (self.limit - current) / previous) * self.window
        else:  # wait into the next window, where this window's count fades
            target = (index + 2 - self.limit / current) * self.window
        wait = first_admitted_delay(
            lambda t: self._estimate_at(state, t) < self.limit, now, target - now
        )
        return Decision(False, 0, wait), state

    def _recovered(self, state, now):
        return self._counts_at(state, now)[1:] == (0, 0)


# --- the leaking bucket as a queue, simulated ----------------------------------------


def simulate_leaking_bucket(
    arrivals: Sequence[float], *, capacity: int, leak_rate: float
) -> list[float | None]:
    """Run arrivals through a SimPy model of a leaking bucket; return departure times.

    The bucket is a queue in front of a server that takes ``1 / leak_rate`` seconds per
    request; a request that finds ``capacity`` requests in the bucket (queued or being
    served) is turned away (``None``). Departures at an instant happen before arrivals at
    that instant. The result agrees with :class:`LeakingBucket`'s ``departs_at``.
    """
    _whole_number("capacity", capacity)
    _positive_number("leak_rate", leak_rate)
    env = simpy.Environment()
    drain = simpy.Resource(env, capacity=1)
    departures: list[float | None] = [None] * len(arrivals)
    in_bucket = 0

    def request(i: int):
        nonlocal in_bucket
        with drain.request() as turn:
            yield turn
            yield env.timeout(1 / leak_rate)
        in_bucket -= 1
        departures[i] = env.now

    def arrive(i: int, at: float):
        nonlocal in_bucket
        yield env.timeout(at)  # from time 0, so the arrival lands exactly at `at`
        yield env.timeout(0)  # let the departures due at this instant go first
        if in_bucket < capacity:
            in_bucket += 1
            env.process(request(i))

    for i, at in enumerate(arrivals):
        _check_now(at)
        env.process(arrive(i, at))
    env.run()
    return departures
