"""Closed forms the course's simulations are plotted against (and tested against).

Queueing (M/M/1, M/M/c with Erlang C, power of d choices) and caching (Zipf popularity,
Che's approximation for LRU). Every function checks its arguments: an unstable queue
raises ``ValueError`` saying so, instead of returning a negative or infinite time.

Sources:
- M/M/1 and M/M/c: L. Kleinrock, *Queueing Systems, Volume 1: Theory* (1975), ch. 3;
  Erlang C computed through the Erlang B recursion, which stays stable for hundreds of
  servers.
- Power of d choices: M. Mitzenmacher, "The Power of Two Choices in Randomized Load
  Balancing", IEEE TPDS 12(10), 2001 (the n -> infinity limit, service rate 1).
- Che's approximation: H. Che, Y. Tung, Z. Wang, "Hierarchical Web caching systems:
  modeling, design and experimental results", IEEE JSAC 20(7), 2002; C. Fricker,
  P. Robert, J. Roberts, "A versatile and accurate approximation for LRU cache
  performance", ITC 2012 (why it is accurate).
- Zipf popularity of web requests: L. Breslau et al., "Web Caching and Zipf-like
  Distributions", INFOCOM 1999 (exponents 0.64-0.83 in proxy traces).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number greater than 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _whole(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return int(value)


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival has to wait in an M/M/c queue (Erlang C).

    ``offered_load`` is A = lambda / mu (in erlangs); the queue is stable only when
    A < servers. Computed with the Erlang B recursion ``B(k) = A B(k-1) / (k + A B(k-1))``
    and ``C = c B / (c - A (1 - B))``.
    """
    c = _whole("servers", servers)
    if isinstance(offered_load, bool) or not isinstance(offered_load, int | float):
        raise ValueError(f"offered_load must be a number, got {offered_load!r}")
    a = float(offered_load)
    if a < 0:
        raise ValueError(f"offered_load must be at least 0, got {offered_load!r}")
    if a >= c:
        raise ValueError(
            f"unstable queue: offered_load {a:g} must be below servers {c} "
            "(utilisation A/c must be < 1, or the queue grows forever)"
        )
    if a == 0:
        return 0.0
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1 - b))


def _utilisation(arrival_rate: float, capacity: float, what: str) -> float:
    rho = arrival_rate / capacity
    if rho >= 1:
        raise ValueError(
            f"unstable queue: arrival_rate {arrival_rate:g} must be below {what} {capacity:g} "
            f"(utilisation {rho:.3g} >= 1: the queue grows forever)"
        )
    return rho


def mmc_mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean time an arrival waits in the queue of an M/M/c system (Wq, before service).

    ``Wq = C(c, A) / (c mu - lambda)`` with A = lambda / mu.
    """
    lam = _positive("arrival_rate", arrival_rate)
    mu = _positive("service_rate", service_rate)
    c = _whole("servers", servers)
    _utilisation(lam, c * mu, "servers x service_rate")
    return erlang_c(c, lam / mu) / (c * mu - lam)


def mm1_mean_time(arrival_rate: float, service_rate: float) -> float:
    """Mean time in an M/M/1 system, waiting plus service: ``W = 1 / (mu - lambda)``."""
    lam = _positive("arrival_rate", arrival_rate)
    mu = _positive("service_rate", service_rate)
    _utilisation(lam, mu, "service_rate")
    return 1.0 / (mu - lam)


def power_of_d_mean_time(load: float, d: int) -> float:
    """Mean time in system when each job joins the shortest of ``d`` random queues.

    Mitzenmacher's n -> infinity limit with service rate 1 and per-server ``load``
    lambda < 1: ``T_d = sum_{i>=1} lambda^((d^i - d)/(d - 1))``. ``d = 1`` is random
    assignment, an M/M/1 queue per server: ``1 / (1 - lambda)``.
    """
    lam = _positive("load", load)
    if lam >= 1:
        raise ValueError(f"unstable queue: load must be below 1 (service rate 1), got {load!r}")
    d = _whole("d", d)
    if d == 1:
        return 1.0 / (1.0 - lam)
    total, i = 0.0, 1
    while True:
        exponent = (d**i - d) / (d - 1)
        term = lam**exponent
        total += term
        if term < 1e-16 or exponent > 1e6:
            return total
        i += 1


def zipf_popularity(n_items: int, alpha: float) -> np.ndarray:
    """Request probabilities of items ranked 1..n: ``p_i`` proportional to ``i ** -alpha``."""
    n = _whole("n_items", n_items)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not alpha >= 0:
        raise ValueError(f"alpha must be a number of at least 0, got {alpha!r}")
    weights = np.arange(1, n + 1, dtype=float) ** -float(alpha)
    return weights / weights.sum()


def che_characteristic_time(popularity: np.ndarray, cache_size: float) -> float:
    """Che's characteristic time T_C: ``sum_i (1 - exp(-p_i T_C)) = cache_size``."""
    p = popularity
    lo, hi = 0.0, 1.0
    while np.sum(-np.expm1(-p * hi)) < cache_size:
        hi *= 2
    for _ in range(200):  # bisection: the left side grows monotonically with T
        mid = (lo + hi) / 2
        if np.sum(-np.expm1(-p * mid)) < cache_size:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return (lo + hi) / 2


def che_hit_ratio(popularity: Sequence[float] | np.ndarray, cache_size: int) -> float:
    """LRU hit ratio under the independent reference model, by Che's approximation.

    ``popularity`` is each item's request probability (it must sum to 1); item i is in
    the cache with probability ``1 - exp(-p_i T_C)``, and the hit ratio is
    ``sum_i p_i (1 - exp(-p_i T_C))``. A cache that holds every item hits always.
    """
    p = np.asarray(popularity, dtype=float)
    if p.ndim != 1 or p.size == 0:
        raise ValueError("popularity must be a non-empty sequence of probabilities")
    if np.any(~np.isfinite(p)) or np.any(p < 0):
        raise ValueError("popularity must hold probabilities: finite numbers of at least 0")
    if not math.isclose(float(p.sum()), 1.0, rel_tol=1e-6):
        raise ValueError(f"popularity must sum to 1, got {float(p.sum()):.6g}")
    size = _whole("cache_size", cache_size, minimum=0)
    if size == 0:
        return 0.0
    if size >= np.count_nonzero(p):
        return 1.0
    t_c = che_characteristic_time(p, size)
    return float(np.sum(p * -np.expm1(-p * t_c)))
