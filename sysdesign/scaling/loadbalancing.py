"""A load balancer in front of a cluster, simulated with SimPy, with pluggable policies.

Jobs arrive as a Poisson process at rate ``load x n_servers x mu`` (``mu = 1``: a mean
service time of one time unit), each needs an exponential service time, and a *policy*
decides where each one goes:

- :class:`RandomChoice` -- any server, uniformly: each server is an M/M/1 queue;
- :class:`RoundRobin` -- servers in turn;
- :class:`LeastConnections` -- the server with the fewest outstanding requests (join the
  shortest queue);
- :class:`PowerOfChoices` -- ``d`` servers at random, the less loaded of them
  (Mitzenmacher's "power of two choices" for ``d = 2``);
- :class:`CentralQueue` -- no choice at all: one shared FIFO queue that every idle server
  pulls from, i.e. an M/M/c queue, the best any policy can do with identical servers.

:func:`simulate` runs one policy and returns a :class:`SimulationResult`: the mean, p50,
p95 and p99 of the *latency* (time in system: waiting plus service) and the mean *wait*
(before service starts), with the first ``warmup`` jobs discarded so that the queues start
from their steady state rather than empty.

The same function can kill a server mid-run (``fail_at``): the server stops answering;
the requests on it, and every request sent to it later, fail, and the client notices
``timeout`` time units after the later of sending and the crash. With
``health_check_interval`` the balancer probes every server at ``h, 2h, 3h, ...`` and stops
sending to a dead one from the first probe after the crash; with ``retries`` the client
sends a failed request again, to a server it has not tried yet (the time it lost waiting
is part of the latency). The result counts the requests that still failed
(``error_rate``) and the ones that needed a retry.

The closed forms the simulation is held to are in :mod:`sysdesign.theory`
(``mmc_mean_wait``, ``mm1_mean_time``, ``power_of_d_mean_time``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np
import simpy

SERVICE_RATE = 1.0  # mu: the mean service time is one time unit

# --- policies --------------------------------------------------------------------------
# A policy is a small object with a ``choose(candidates, outstanding, rng)`` method: given
# the servers it may use (a non-empty list of indices), the number of outstanding requests
# on each server (queued + in service, as the balancer counts them) and a random.Random,
# it returns one of the candidates.


class RandomChoice:
    """Send each request to a server chosen uniformly at random."""

    name = "random"

    def choose(self, candidates: list[int], outstanding: list[int], rng: random.Random) -> int:
        return candidates[int(rng.random() * len(candidates))]


class RoundRobin:
    """Send requests to the servers in turn."""

    name = "round-robin"

    def __init__(self) -> None:
        self.turn = 0

    def choose(self, candidates: list[int], outstanding: list[int], rng: random.Random) -> int:
        server = candidates[self.turn % len(candidates)]
        self.turn += 1
        return server


class LeastConnections:
    """Send each request to the server with the fewest outstanding requests (ties: the
    first one in the list)."""

    name = "least-connections"

    def choose(self, candidates: list[int], outstanding: list[int], rng: random.Random) -> int:
        return min(candidates, key=outstanding.__getitem__)


class PowerOfChoices:
    """Sample ``d`` distinct servers at random and send the request to the one with the
    fewest outstanding requests (Mitzenmacher 2001; ``d = 2`` is "power of two choices")."""

    def __init__(self, d: int = 2) -> None:
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ValueError(f"d must be a whole number of at least 1, got {d!r}")
        self.d = d
        self.name = "power-of-two" if d == 2 else f"power-of-{d}"

    def choose(self, candidates: list[int], outstanding: list[int], rng: random.Random) -> int:
        sample = rng.sample(candidates, min(self.d, len(candidates)))
        return min(sample, key=outstanding.__getitem__)


class CentralQueue:
    """No per-server queues: one shared FIFO that every idle server takes the next job
    from (an M/M/c queue). Not a ``choose`` policy: :func:`simulate` handles it."""

    name = "central-queue"


POLICIES = ("random", "round-robin", "least-connections", "power-of-two", "central-queue")


def make_policy(name: str):
    """A fresh policy object from its name (one of :data:`POLICIES`)."""
    factories = {
        "random": RandomChoice,
        "round-robin": RoundRobin,
        "least-connections": LeastConnections,
        "power-of-two": lambda: PowerOfChoices(2),
        "central-queue": CentralQueue,
    }
    if name not in factories:
        raise ValueError(f"policy must be one of {list(POLICIES)}, got {name!r}")
    return factories[name]()


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulationResult:
    """What the clients saw, over the measured (post-warm-up) requests.

    Latencies are times in system (wait + service) of the requests that succeeded, in
    units of the mean service time. ``timeline`` holds, per ``bin_width`` of arrival time,
    the error rate and mean latency (used to plot a failure over time).
    """

    policy: str
    n_servers: int
    load: float
    n_jobs: int
    mean: float
    p50: float
    p95: float
    p99: float
    mean_wait: float
    error_rate: float = 0.0
    retried: float = 0.0
    timeline: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)


# --- validation ------------------------------------------------------------------------


def _whole(name: str, value, minimum: int, maximum: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ValueError(
            f"{name} must be a whole number of at least {minimum}{upper}, got {value!r}"
        )
    return int(value)


def _number(name: str, value, low: float, high: float, *, open_low=True, open_high=True) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and (
            value < high if open_high else value <= high
        )
    if not ok:
        lo, hi = ("(" if open_low else "["), (")" if open_high else "]")
        raise ValueError(f"{name} must be a number in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return float(value)


# --- the simulation --------------------------------------------------------------------


def simulate(
    policy: str = "random",
    n_servers: int = 10,
    load: float = 0.7,
    n_jobs: int = 20_000,
    seed: int = 0,
    *,
    warmup: int | None = None,
    fail_at: float | None = None,
    health_check_interval: float | None = None,
    retries: int = 0,
    timeout: float = 1.0,
    bin_width: float | None = None,
) -> SimulationResult:
    """Run ``n_jobs`` measured requests (after ``warmup`` more, default ``n_jobs // 10``)
    through a balancer using ``policy`` (a name from :data:`POLICIES`) in front of
    ``n_servers`` identical servers at utilisation ``load`` (0 < load < 1).

    Failure (optional, not for ``central-queue``): server 0 dies at time ``fail_at``;
    ``health_check_interval`` (None: no health checks) and ``retries`` (extra attempts on
    other servers) are the two defences; ``timeout`` is how long a client waits on a dead
    server before it gives up on that attempt. ``bin_width`` (time units) fills
    ``result.timeline``. The same arguments give the same result.
    """
    policy_obj = make_policy(policy) if isinstance(policy, str) else None
    if policy_obj is None:
        raise ValueError(f"policy must be one of {list(POLICIES)}, got {policy!r}")
    n = _whole("n_servers", n_servers, 1, 10_000)
    rho = _number("load", load, 0.0, 1.0)
    n_jobs = _whole("n_jobs", n_jobs, 1)
    seed = _whole("seed", seed, 0)
    warmup = n_jobs // 10 if warmup is None else _whole("warmup", warmup, 0)
    retries = _whole("retries", retries, 0, 10)
    timeout = _number("timeout", timeout, 0.0, math.inf)
    if fail_at is not None:
        fail_at = _number("fail_at", fail_at, 0.0, math.inf, open_low=False)
        if policy == "central-queue":
            raise ValueError(
                "fail_at: a failing server is simulated for the push policies only, "
                "not policy='central-queue' (there, a dead worker just stops pulling jobs)"
            )
        if n < 2:
            raise ValueError(f"n_servers must be at least 2 when a server fails, got {n}")
    if health_check_interval is not None:
        health_check_interval = _number("health_check_interval", health_check_interval, 0, math.inf)
    if bin_width is not None:
        bin_width = _number("bin_width", bin_width, 0.0, math.inf)

    arrival_rate = rho * n * SERVICE_RATE
    total = warmup + n_jobs
    traffic = random.Random(seed)  # arrivals and service times: the same for every policy
    choices = random.Random(seed + 1_000_003)  # the policy's own coin flips

    env = simpy.Environment()
    central = policy == "central-queue"
    if central:
        queues = [simpy.Resource(env, capacity=n)]
    else:
        queues = [simpy.Resource(env, capacity=1) for _ in range(n)]
    everyone = list(range(n))
    outstanding = [0] * n  # per server: requests sent and not yet answered (or given up on)
    dead = [False] * n
    healthy = [True] * n  # what the balancer believes
    active: list[set] = [set() for _ in range(n)]  # processes on each server (to kill)

    arrived = np.zeros(total)
    latency = np.full(total, np.nan)
    wait = np.full(total, np.nan)
    failed = np.zeros(total, dtype=bool)
    needed_retry = np.zeros(total, dtype=bool)

    def job(k: int, service: float):
        t0 = env.now
        if central:
            with queues[0].request() as req:
                yield req
                wait[k] = env.now - t0
                yield env.timeout(service)
            latency[k] = env.now - t0
            return
        if fail_at is None:  # the common case, kept lean: one try, nothing can fail
            server = policy_obj.choose(everyone, outstanding, choices)
            outstanding[server] += 1
            with queues[server].request() as req:
                yield req
                wait[k] = env.now - t0
                yield env.timeout(service)
            outstanding[server] -= 1
            latency[k] = env.now - t0
            return
        tried: list[int] = []
        for attempt_no in range(retries + 1):
            candidates = (
                everyone
                if not tried and all(healthy)
                else [s for s in range(n) if healthy[s] and s not in tried]
            )
            if not candidates:
                candidates = [s for s in range(n) if healthy[s]] or list(range(n))
            server = policy_obj.choose(candidates, outstanding, choices)
            tried.append(server)
            outstanding[server] += 1
            sent = env.now
            if not dead[server]:  # one try; the crash interrupts every process on server 0
                me = env.active_process
                active[server].add(me)
                try:
                    with queues[server].request() as req:
                        yield req
                        if not dead[server]:
                            wait[k] = env.now - t0
                            yield env.timeout(service)
                            outstanding[server] -= 1
                            latency[k] = env.now - t0
                            return
                except simpy.Interrupt:
                    pass
                finally:
                    active[server].discard(me)
            # the client hears nothing: it gives up `timeout` after sending or the crash
            noticed = max(sent, fail_at) + timeout
            yield env.timeout(max(0.0, noticed - env.now))
            outstanding[server] -= 1
            if attempt_no < retries:
                needed_retry[k] = True
        failed[k] = True

    def arrivals():
        for k in range(total):
            yield env.timeout(traffic.expovariate(arrival_rate))
            arrived[k] = env.now
            env.process(job(k, traffic.expovariate(SERVICE_RATE)))

    def crash():
        yield env.timeout(fail_at)
        dead[0] = True
        for proc in list(active[0]):
            if proc.is_alive:
                proc.interrupt("server died")

    def health_checks():
        while True:
            yield env.timeout(health_check_interval)
            for s in range(n):
                healthy[s] = not dead[s]
            if not all(healthy):
                return  # nothing recovers in this model: no more probes needed

    env.process(arrivals())
    if fail_at is not None:
        env.process(crash())
        if health_check_interval is not None:
            env.process(health_checks())
    env.run()  # until every request is answered or given up on

    measured = slice(warmup, total)
    ok = ~failed[measured]
    times = latency[measured][ok]
    if times.size == 0:
        p50 = p95 = p99 = mean = mean_wait = math.nan
    else:
        p50, p95, p99 = np.percentile(times, [50, 95, 99])
        mean = float(times.mean())
        mean_wait = float(wait[measured][ok].mean())
    timeline = {}
    if bin_width is not None:
        timeline = _timeline(arrived[measured], latency[measured], failed[measured], bin_width)
    return SimulationResult(
        policy=policy,
        n_servers=n,
        load=rho,
        n_jobs=n_jobs,
        mean=mean,
        p50=float(p50),
        p95=float(p95),
        p99=float(p99),
        mean_wait=mean_wait,
        error_rate=float(failed[measured].mean()),
        retried=float(needed_retry[measured].mean()),
        timeline=timeline,
    )


def _timeline(arrived, latency, failed, bin_width: float) -> dict[str, np.ndarray]:
    """Per bin of arrival time: the error rate and the mean latency of the successes."""
    bins = np.floor(arrived / bin_width).astype(int)
    bins -= bins.min()
    count = np.bincount(bins)
    errors = np.bincount(bins, weights=failed)
    ok_count = np.bincount(bins, weights=~failed)
    ok_sum = np.bincount(bins, weights=np.where(failed, 0.0, latency))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "start": (np.arange(count.size) + np.floor(arrived.min() / bin_width)) * bin_width,
            "error_rate": np.where(count > 0, errors / np.maximum(count, 1), np.nan),
            "mean_latency": np.where(ok_count > 0, ok_sum / np.maximum(ok_count, 1), np.nan),
        }


def mm1_latency_percentile(q: float, load: float, service_rate: float = SERVICE_RATE) -> float:
    """The q-quantile of the time in system of an M/M/1 queue (FIFO).

    The time in system is exponential with rate ``mu - lambda``, so its q-quantile is
    ``-ln(1 - q) / (mu - lambda)`` (L. Kleinrock, *Queueing Systems, Volume 1*, 1975,
    section 3.2); with random assignment every server is such a queue. ``load`` is
    lambda / mu.
    """
    q = _number("q", q, 0.0, 1.0)
    rho = _number("load", load, 0.0, 1.0)
    mu = _number("service_rate", service_rate, 0.0, math.inf)
    return -math.log1p(-q) / (mu * (1 - rho))


def compare_policies(
    n_servers: int,
    load: float,
    n_jobs: int = 20_000,
    seed: int = 0,
    policies: tuple[str, ...] = POLICIES,
) -> dict[str, SimulationResult]:
    """Every policy on the same arrivals and service times (the same ``seed``)."""
    return {name: simulate(name, n_servers, load, n_jobs, seed) for name in policies}
