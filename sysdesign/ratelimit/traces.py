"""Seeded synthetic request traces, and replaying one through a limiter.

A trace is a list of ``(time, key)`` pairs sorted by time: who sent a request when.
Every generator takes a ``seed``, so the same call gives the same trace in a notebook, a
test and a benchmark.

- :func:`poisson_times`: requests arriving at random, ``rate`` per second on average.
- :func:`bursty_times`: bursts of back-to-back requests, the bursts arriving at random.
- :func:`one_client`: times of one client as a trace (e.g. a bursty single key).
- :func:`client_mix`: many clients on one timeline, some steady (Poisson), some bursty.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from sysdesign.arguments import non_negative as _non_negative
from sysdesign.arguments import positive_number as _positive_number
from sysdesign.arguments import whole_number as _whole_number
from sysdesign.ratelimit.algorithms import Decision

Trace = list[tuple[float, str]]


def poisson_times(rate: float, duration: float, *, seed: int, start: float = 0.0) -> list[float]:
    """Arrival times in ``[start, start + duration)`` of a Poisson process of ``rate``/s.

    The gaps between requests are exponential with mean ``1 / rate``.
    """
    _positive_number("rate", rate)
    _positive_number("duration", duration)
    _non_negative("start", start)
    rng = random.Random(seed)
    times, t = [], start
    while True:
        t += rng.expovariate(rate)
        if t >= start + duration:
            return times
        times.append(t)


def bursty_times(
    *,
    duration: float,
    burst_size: int,
    bursts_per_second: float,
    burst_spread: float = 0.05,
    seed: int,
    start: float = 0.0,
) -> list[float]:
    """Bursts of ``burst_size`` requests, each burst within ``burst_spread`` seconds.

    Bursts start at the times of a Poisson process of ``bursts_per_second``; the requests
    of a burst fall at random in its first ``burst_spread`` seconds. Sorted, all in
    ``[start, start + duration)``.
    """
    _whole_number("burst_size", burst_size)
    _non_negative("burst_spread", burst_spread)
    rng = random.Random(seed)
    times = []
    starts = poisson_times(bursts_per_second, duration, seed=rng.randrange(2**32), start=start)
    for burst_start in starts:
        for _ in range(burst_size):
            t = burst_start + rng.uniform(0, burst_spread)
            if t < start + duration:
                times.append(t)
    return sorted(times)


def one_client(times: Iterable[float], key: str = "client") -> Trace:
    """The trace of a single client ``key`` sending at ``times``."""
    return [(t, key) for t in sorted(times)]


def client_mix(
    *,
    duration: float,
    steady_clients: int = 3,
    steady_rate: float = 2.0,
    bursty_clients: int = 2,
    burst_size: int = 10,
    bursts_per_second: float = 0.2,
    seed: int,
    start: float = 0.0,
) -> Trace:
    """A multi-client trace: steady clients ``steady-0, ...`` sending Poisson traffic at
    ``steady_rate``/s each, and bursty clients ``bursty-0, ...`` (see :func:`bursty_times`).
    """
    for name, count in (("steady_clients", steady_clients), ("bursty_clients", bursty_clients)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{name} must be a whole number of at least 0, got {count!r}")
    rng = random.Random(seed)
    trace: Trace = []
    for i in range(steady_clients):
        times = poisson_times(steady_rate, duration, seed=rng.randrange(2**32), start=start)
        trace += [(t, f"steady-{i}") for t in times]
    for i in range(bursty_clients):
        times = bursty_times(
            duration=duration,
            burst_size=burst_size,
            bursts_per_second=bursts_per_second,
            seed=rng.randrange(2**32),
            start=start,
        )
        trace += [(t, f"bursty-{i}") for t in times]
    return sorted(trace)


def replay(limiter, trace: Iterable[tuple[float, str]]) -> list[Decision]:
    """Send every request of ``trace`` through ``limiter.allow(key, now)``, in order."""
    return [limiter.allow(key, now) for now, key in trace]
