"""Replication: what a replica that lags behind the leader costs you, and what quorums buy.

Three models, each with a simulation and the closed form it is checked against:

1. **Leader-follower with asynchronous replication** (:func:`simulate_leader_follower`,
   SimPy). The leader applies every write at once and ships it to each follower, where
   it arrives after an independent exponential delay of mean ``mean_lag``; a follower
   keeps the highest version it has seen per key (a late, older write is ignored).
   Readers route by policy: ``"leader"``, ``"random"`` (any of the N = 1 + F nodes) or
   ``"sticky"`` (the leader for ``sticky_window`` seconds after the client's own write,
   else a random node). Closed forms: :func:`stale_read_probability`,
   :func:`read_your_writes_violation`, :func:`expected_lost_writes`.
2. **Failover** with asynchronous replication loses the acknowledged writes the new
   leader has not received (:func:`failover_losses`, numpy Monte Carlo; the SimPy run
   also probes it).
3. **Quorums** (N, R, W) (:func:`quorum_stale_monte_carlo`,
   :func:`availability_monte_carlo`): the probability that a read set misses every
   up-to-date replica (Bailis et al., PBS, VLDB 2012) and the availability of reads and
   writes when nodes fail independently.

Every function that draws random numbers takes ``seed=``; the same arguments give the
same numbers. Bad arguments raise ``ValueError`` naming the parameter and its range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy

from sysdesign.arguments import positive_number

ROUTINGS = ("leader", "random", "sticky")


# --- argument checks ------------------------------------------------------------------


def _positive(name: str, value: float) -> float:
    return float(positive_number(name, value))


def _non_negative(name: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _integer(name: str, value: int, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        upper = f" and <= {high}" if high is not None else ""
        raise ValueError(f"{name} must be >= {low}{upper}, got {value!r}")
    return int(value)


def _probability(name: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise ValueError(f"{name} must be a probability between 0 and 1, got {value!r}")
    return float(value)


def _routing(routing: str) -> str:
    if routing not in ROUTINGS:
        raise ValueError(f"routing must be one of {list(ROUTINGS)}, got {routing!r}")
    return routing


# --- closed forms: leader-follower ----------------------------------------------------


def stale_read_probability(
    *, write_rate: float, mean_lag: float, followers: int = 1, routing: str = "follower"
) -> float:
    """Probability that a read at a random moment returns an old version of a key.

    Derivation. Writes to the key are Poisson at ``write_rate`` w; each write reaches a
    follower after an independent exponential lag D of mean L (``mean_lag``), and a
    follower keeps the highest version it has seen. A read at a random moment (Poisson
    reads see time averages, PASTA) finds the latest write of age A ~ Exp(w) (looking
    back from a random time, the gap to the previous Poisson event is exponential). The
    follower is stale exactly when that latest write has not arrived, D > A::

        P(D > A) = integral_0^inf w e^(-w a) e^(-a / L) da = w / (w + 1/L) = wL / (1 + wL).

    (Older writes do not matter: with versions, the latest arriving is enough.)

    ``routing``: ``"follower"`` (always read a follower) gives wL / (1 + wL);
    ``"random"`` picks one of N = 1 + F nodes, so F/N of reads go to a follower:
    (F/N) wL / (1 + wL); ``"leader"`` gives 0. ``"sticky"`` routes reads of *other*
    clients' keys like ``"random"``.
    """
    w = _positive("write_rate", write_rate)
    lag = _non_negative("mean_lag", mean_lag)
    f = _integer("followers", followers, 1)
    if routing == "leader":
        return 0.0
    p_follower = w * lag / (1 + w * lag)
    if routing == "follower":
        return p_follower
    if routing in ("random", "sticky"):
        return f / (f + 1) * p_follower
    raise ValueError(
        f"routing must be one of ['follower', 'leader', 'random', 'sticky'], got {routing!r}"
    )


def read_your_writes_violation(
    *,
    read_delay: float,
    mean_lag: float,
    followers: int = 1,
    routing: str = "random",
    sticky_window: float = 0.0,
) -> float:
    """Probability that a client reading its own write ``read_delay`` seconds later does
    not see it (nobody else writes that key, e.g. a user's own profile).

    The write is on the leader at once; a follower has it once its exponential lag of
    mean L has passed, so a follower still misses it after d seconds with probability
    P(D > d) = exp(-d / L). Routing the read:

    - ``"leader"``: 0;
    - ``"random"`` over N = 1 + F nodes: (F / N) exp(-d / L);
    - ``"sticky"`` (read from the leader for ``sticky_window`` T after your own write,
      then random): 0 if d < T, else (F / N) exp(-d / L).
    """
    d = _non_negative("read_delay", read_delay)
    lag = _non_negative("mean_lag", mean_lag)
    f = _integer("followers", followers, 1)
    window = _non_negative("sticky_window", sticky_window)
    _routing(routing)
    if routing == "leader" or (routing == "sticky" and d < window):
        return 0.0
    missing = math.exp(-d / lag) if lag > 0 else 0.0
    return f / (f + 1) * missing


def expected_lost_writes(
    *, write_rate: float, mean_lag: float, followers: int = 1, promote: str = "random"
) -> float:
    """Expected number of acknowledged writes lost when the leader dies and a follower
    takes over, with asynchronous replication.

    At any moment, the writes in flight to one follower form an M/G/infinity system:
    arrivals at ``write_rate`` lambda, each staying for its lag (mean L). The number in
    flight at a random moment is Poisson with mean lambda L (Little's law gives the mean
    for any lag distribution; the Poisson shape is the M/G/infinity result, e.g. Kleinrock,
    *Queueing Systems* vol. 1, 1975). So:

    - ``"random"`` (promote any follower): lambda L lost on average, and
      P(nothing lost) = exp(-lambda L);
    - ``"merge"`` (recover every write that reached *any* follower): a write is lost only
      if it reached none, i.e. it is in flight for min(D_1..D_F) ~ Exp(mean L / F):
      lambda L / F on average.

    Promoting the follower that is missing the fewest writes lies between the two; it
    has no simple closed form, so the notebook measures it (:func:`failover_losses`).
    """
    rate = _non_negative("write_rate", write_rate)
    lag = _non_negative("mean_lag", mean_lag)
    f = _integer("followers", followers, 1)
    if promote == "random":
        return rate * lag
    if promote == "merge":
        return rate * lag / f
    raise ValueError(f"promote must be 'random' or 'merge', got {promote!r}")


# --- closed forms: quorums ------------------------------------------------------------


def _check_quorum(n: int, r: int, w: int) -> tuple[int, int, int]:
    n = _integer("n", n, 1)
    r = _integer("r", r, 1, n)
    w = _integer("w", w, 1, n)
    return n, r, w


def quorum_stale_probability(n: int, r: int, w: int, *, t: float = 0.0, mean_lag: float = 0.0):
    """Probability that a read of R replicas (chosen at random among N) returns no copy
    of the latest write, ``t`` seconds after that write was acknowledged by W replicas.

    At t = 0 exactly W replicas hold the write; the read misses all of them with
    probability C(N - W, R) / C(N, R) (Bailis et al., "Probabilistically Bounded
    Staleness for Practical Partial Quorums", VLDB 2012, k = 1). It is 0 whenever
    R + W > N (every read set meets every write set: strict quorums).

    For t > 0 we use a simplified PBS model: each of the other N - W replicas receives the
    write an independent Exp(mean ``mean_lag``) after the acknowledgement, so M, the
    number still without it, is Binomial(N - W, exp(-t / L)), and::

        P(stale) = sum_m P(M = m) C(m, R) / C(N, R).
    """
    n, r, w = _check_quorum(n, r, w)
    t = _non_negative("t", t)
    lag = _non_negative("mean_lag", mean_lag)
    rest = n - w
    p_missing = 1.0 if t == 0 else (math.exp(-t / lag) if lag > 0 else 0.0)
    total = math.comb(n, r)
    return (
        sum(
            math.comb(rest, m) * p_missing**m * (1 - p_missing) ** (rest - m) * math.comb(m, r)
            for m in range(r, rest + 1)
        )
        / total
    )


def quorum_availability(n: int, k: int, node_failure: float) -> float:
    """Probability that at least ``k`` of ``n`` nodes are up when each is down
    independently with probability ``node_failure`` f: the binomial tail
    sum_{j >= k} C(n, j) (1 - f)^j f^(n - j). A write needs k = W, a read k = R."""
    n = _integer("n", n, 1)
    k = _integer("k", k, 0, n)
    f = _probability("node_failure", node_failure)
    return sum(math.comb(n, j) * (1 - f) ** j * f ** (n - j) for j in range(k, n + 1))


# --- Monte Carlo: quorums and failover (numpy, vectorized) ---------------------------


def quorum_stale_monte_carlo(
    n: int, r: int, w: int, *, t: float = 0.0, mean_lag: float = 0.0, trials: int, seed: int
) -> float:
    """Fraction of ``trials`` reads that miss the latest write (the model of
    :func:`quorum_stale_probability`): W random replicas hold it at commit, each other one
    receives it after an Exp(mean_lag) delay, the read asks R random replicas at time t."""
    n, r, w = _check_quorum(n, r, w)
    t = _non_negative("t", t)
    lag = _non_negative("mean_lag", mean_lag)
    trials = _integer("trials", trials, 1)
    rng = np.random.default_rng(seed)
    # A random ordering of the replicas; the first W hold the write at commit.
    write_order = np.argsort(rng.random((trials, n)), axis=1)
    has = np.zeros((trials, n), dtype=bool)
    np.put_along_axis(has, write_order[:, :w], True, axis=1)
    if t > 0 and lag > 0:
        has |= rng.exponential(lag, (trials, n)) <= t
    read_set = np.argsort(rng.random((trials, n)), axis=1)[:, :r]
    saw = np.take_along_axis(has, read_set, axis=1).any(axis=1)
    return float(1 - saw.mean())


def availability_monte_carlo(n: int, k: int, node_failure: float, *, trials: int, seed: int):
    """Fraction of ``trials`` in which at least ``k`` of ``n`` independently failing
    nodes are up (see :func:`quorum_availability`)."""
    n = _integer("n", n, 1)
    k = _integer("k", k, 0, n)
    f = _probability("node_failure", node_failure)
    trials = _integer("trials", trials, 1)
    up = (np.random.default_rng(seed).random((trials, n)) >= f).sum(axis=1)
    return float((up >= k).mean())


@dataclass(frozen=True)
class FailoverLosses:
    """Writes lost per failover, one entry per simulated crash."""

    random_follower: np.ndarray  # the promoted follower is a random one
    best_follower: np.ndarray  # the follower missing the fewest writes
    merged: np.ndarray  # writes that reached no follower at all

    def means(self) -> dict[str, float]:
        return {
            "random_follower": float(self.random_follower.mean()),
            "best_follower": float(self.best_follower.mean()),
            "merged": float(self.merged.mean()),
        }


def failover_losses(
    *, write_rate: float, mean_lag: float, followers: int, crashes: int, seed: int
) -> FailoverLosses:
    """Crash the leader ``crashes`` times at a random moment and count the acknowledged
    writes each follower has not received.

    Writes before the crash are Poisson at ``write_rate``; only the last 15 mean lags
    matter (a write older than that is still in flight with probability e^-15, about 3e-7). Each
    write's lag to each follower is Exp(``mean_lag``)."""
    rate = _non_negative("write_rate", write_rate)
    lag = _non_negative("mean_lag", mean_lag)
    f = _integer("followers", followers, 1)
    crashes = _integer("crashes", crashes, 1)
    rng = np.random.default_rng(seed)
    horizon = 15 * lag
    counts = rng.poisson(rate * horizon, crashes)
    total = int(counts.sum())
    ages = rng.uniform(0, horizon, total)  # time from each write to the crash
    missing = (
        rng.exponential(lag, (total, f)) > ages[:, None] if lag > 0 else np.zeros((total, f), bool)
    )
    crash_of = np.repeat(np.arange(crashes), counts)
    per_follower = np.zeros((crashes, f))
    np.add.at(per_follower, crash_of, missing)
    merged = np.bincount(crash_of, weights=missing.all(axis=1), minlength=crashes)
    return FailoverLosses(
        random_follower=per_follower[:, 0].copy(),  # follower 0 is as good as a random one
        best_follower=per_follower.min(axis=1),
        merged=merged,
    )


# --- SimPy: leader + followers + clients ----------------------------------------------


@dataclass(frozen=True)
class LeaderFollowerRun:
    """What a :func:`simulate_leader_follower` run measured."""

    reads: int  # background reads of random keys
    stale_reads: int  # ... that returned an older version than the leader's
    own_reads: int  # reads of a client's own write, read_delay after it
    ryw_violations: int  # ... that did not see it
    writes: int
    probes: int  # random moments at which the leader could have crashed
    lost_random: float  # mean writes a (random) follower was missing at those moments
    lost_merged: float  # mean writes no follower had

    @property
    def stale_fraction(self) -> float:
        return self.stale_reads / self.reads if self.reads else 0.0

    @property
    def ryw_fraction(self) -> float:
        return self.ryw_violations / self.own_reads if self.own_reads else 0.0


def simulate_leader_follower(
    *,
    followers: int = 2,
    mean_lag: float = 0.1,
    write_rate: float = 2.0,
    keys: int = 20,
    read_rate: float = 200.0,
    read_delay: float = 0.05,
    routing: str = "random",
    sticky_window: float = 0.0,
    duration: float = 200.0,
    seed: int = 0,
) -> LeaderFollowerRun:
    """One leader, ``followers`` followers, ``keys`` keys, SimPy.

    - Each key has its own client writing it, Poisson at ``write_rate`` per key. The
      leader applies the write at once; it reaches each follower after an independent
      Exp(``mean_lag``) delay, and the follower keeps it only if it is newer.
    - ``read_delay`` seconds after each write, its client reads the key back (routed by
      ``routing``) and checks it sees its own write: read-your-writes.
    - Other clients read a random key, Poisson at ``read_rate`` in total, routed by
      ``routing`` (``"sticky"`` routes them like ``"random"``: they wrote nothing).
    - At Poisson moments (rate 10/s) a probe counts the writes follower 0 is missing and
      those no follower has: what a crash of the leader at that moment would lose.
    """
    f = _integer("followers", followers, 1)
    lag = _non_negative("mean_lag", mean_lag)
    w = _positive("write_rate", write_rate)
    k = _integer("keys", keys, 1)
    r = _positive("read_rate", read_rate)
    d = _non_negative("read_delay", read_delay)
    _routing(routing)
    window = _non_negative("sticky_window", sticky_window)
    horizon = _positive("duration", duration)

    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    nodes = 1 + f
    version = np.zeros((nodes, k), dtype=np.int64)  # node 0 is the leader
    in_flight = np.zeros(f, dtype=np.int64)  # writes sent to each follower, not arrived
    counts = dict(reads=0, stale=0, own=0, ryw=0, writes=0, probes=0)
    lost = dict(random=0, merged=0)

    def pick_node(own_write_age: float | None) -> int:
        if routing == "leader":
            return 0
        if routing == "sticky" and own_write_age is not None and own_write_age < window:
            return 0
        return int(rng.integers(nodes))

    first_arrivals = {"pending": 0}  # writes no follower has yet

    def deliver(follower: int, key: int, v: int, state: dict):
        yield env.timeout(rng.exponential(lag) if lag > 0 else 0.0)
        in_flight[follower] -= 1
        if not state["seen"]:
            state["seen"] = True
            first_arrivals["pending"] -= 1
        if version[follower + 1, key] < v:
            version[follower + 1, key] = v

    def read_own(key: int, v: int):
        yield env.timeout(d)
        node = pick_node(own_write_age=d)
        counts["own"] += 1
        counts["ryw"] += int(version[node, key] < v)

    def writer(key: int):
        while True:
            yield env.timeout(rng.exponential(1 / w))
            version[0, key] += 1
            v = int(version[0, key])
            counts["writes"] += 1
            state = {"seen": False}
            first_arrivals["pending"] += 1
            for j in range(f):
                in_flight[j] += 1
                env.process(deliver(j, key, v, state))
            env.process(read_own(key, v))

    def reader():
        while True:
            yield env.timeout(rng.exponential(1 / r))
            key = int(rng.integers(k))
            node = pick_node(own_write_age=None)
            counts["reads"] += 1
            counts["stale"] += int(version[node, key] < version[0, key])

    def prober():
        while True:
            yield env.timeout(rng.exponential(0.1))
            counts["probes"] += 1
            lost["random"] += int(in_flight[0])
            lost["merged"] += first_arrivals["pending"]

    for key in range(k):
        env.process(writer(key))
    env.process(reader())
    env.process(prober())
    env.run(until=horizon)
    probes = counts["probes"]
    return LeaderFollowerRun(
        reads=counts["reads"],
        stale_reads=counts["stale"],
        own_reads=counts["own"],
        ryw_violations=counts["ryw"],
        writes=counts["writes"],
        probes=probes,
        lost_random=lost["random"] / probes if probes else 0.0,
        lost_merged=lost["merged"] / probes if probes else 0.0,
    )
