"""Load-balancing explorers (``lb-*``): policies against load, and a server that dies.

- ``lb-policy-latency``: mean (or p99) latency against utilisation for the five policies,
  simulated, next to the closed forms where they exist (M/M/1 for random assignment,
  Erlang C for the central queue, Mitzenmacher's n -> infinity limit for power of two).
  The simulations are slow (seconds), so they are read from :data:`LATENCY_TABLE`,
  precomputed by :func:`latency_table` with the package's own :func:`simulate` (a test
  re-runs some rows and checks they match); the theory curves are computed live.
- ``lb-server-failure``: server 0 of 8 dies at t = 60.5 under load 0.7; error rate and
  latency over time, with or without health checks and retries. A small simulation
  (800 requests) runs live on every slider move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from sysdesign.explore import Choice, Slider, explorer
from sysdesign.figures import COLORS, new_figure
from sysdesign.scaling.loadbalancing import (
    POLICIES,
    SimulationResult,
    mm1_latency_percentile,
    simulate,
)
from sysdesign.theory import mm1_mean_time, mmc_mean_wait, power_of_d_mean_time

TABLE_LOADS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
TABLE_SERVERS = (2, 4, 8, 16, 32)
TABLE_JOBS = 20_000
TABLE_SEED = 0
POLICY_COLORS = dict(zip(POLICIES, COLORS, strict=False))


def latency_table(
    loads=TABLE_LOADS, servers=TABLE_SERVERS, n_jobs: int = TABLE_JOBS, seed: int = TABLE_SEED
) -> list[tuple[str, int, float, float, float]]:
    """Rows ``(policy, n_servers, load, mean, p99)`` for every combination (slow: minutes)."""
    rows = []
    for policy in POLICIES:
        for n in servers:
            for load in loads:
                r = simulate(policy, n, load, n_jobs, seed)
                rows.append((policy, n, load, round(r.mean, 4), round(r.p99, 4)))
    return rows


# (policy, n_servers, load, mean latency, p99 latency): latency_table() with its defaults.
# fmt: off
LATENCY_TABLE: tuple[tuple[str, int, float, float, float], ...] = (
    ("random", 2, 0.1, 1.1027, 5.0936),
    ("random", 2, 0.2, 1.245, 5.738),
    ("random", 2, 0.3, 1.4279, 6.4992),
    ("random", 2, 0.4, 1.6639, 7.6261),
    ("random", 2, 0.5, 1.9818, 9.1078),
    ("random", 2, 0.6, 2.4423, 11.2118),
    ("random", 2, 0.7, 3.2839, 16.7461),
    ("random", 2, 0.8, 4.9359, 25.3533),
    ("random", 2, 0.9, 9.0791, 41.8057),
    ("random", 2, 0.95, 15.6623, 64.4163),
    ("random", 4, 0.1, 1.0987, 5.0365),
    ("random", 4, 0.2, 1.2392, 5.7728),
    ("random", 4, 0.3, 1.4189, 6.4926),
    ("random", 4, 0.4, 1.6532, 7.5598),
    ("random", 4, 0.5, 1.9847, 9.332),
    ("random", 4, 0.6, 2.492, 11.858),
    ("random", 4, 0.7, 3.3404, 15.7558),
    ("random", 4, 0.8, 4.9223, 23.2227),
    ("random", 4, 0.9, 8.6872, 32.9321),
    ("random", 4, 0.95, 14.365, 45.7692),
    ("random", 8, 0.1, 1.1031, 5.1162),
    ("random", 8, 0.2, 1.2469, 5.8526),
    ("random", 8, 0.3, 1.4268, 6.7183),
    ("random", 8, 0.4, 1.6665, 7.7543),
    ("random", 8, 0.5, 1.9996, 9.5299),
    ("random", 8, 0.6, 2.4926, 12.2993),
    ("random", 8, 0.7, 3.2862, 15.8863),
    ("random", 8, 0.8, 4.8364, 21.286),
    ("random", 8, 0.9, 8.4676, 31.4335),
    ("random", 8, 0.95, 13.9162, 44.4393),
    ("random", 16, 0.1, 1.1027, 5.0554),
    ("random", 16, 0.2, 1.2375, 5.612),
    ("random", 16, 0.3, 1.4083, 6.3438),
    ("random", 16, 0.4, 1.6382, 7.2638),
    ("random", 16, 0.5, 1.9636, 8.6112),
    ("random", 16, 0.6, 2.4544, 10.4659),
    ("random", 16, 0.7, 3.1918, 13.5065),
    ("random", 16, 0.8, 4.6173, 18.7056),
    ("random", 16, 0.9, 8.4402, 33.8468),
    ("random", 16, 0.95, 14.8222, 50.5521),
    ("random", 32, 0.1, 1.0983, 5.0138),
    ("random", 32, 0.2, 1.229, 5.6136),
    ("random", 32, 0.3, 1.3987, 6.3113),
    ("random", 32, 0.4, 1.624, 7.2524),
    ("random", 32, 0.5, 1.9321, 8.3956),
    ("random", 32, 0.6, 2.4076, 10.2355),
    ("random", 32, 0.7, 3.201, 14.0164),
    ("random", 32, 0.8, 4.6125, 19.7409),
    ("random", 32, 0.9, 8.661, 37.6005),
    ("random", 32, 0.95, 13.2811, 49.2934),
    ("round-robin", 2, 0.1, 1.0212, 4.6482),
    ("round-robin", 2, 0.2, 1.0926, 4.9973),
    ("round-robin", 2, 0.3, 1.2075, 5.5326),
    ("round-robin", 2, 0.4, 1.374, 6.4601),
    ("round-robin", 2, 0.5, 1.61, 7.6761),
    ("round-robin", 2, 0.6, 1.9682, 9.3895),
    ("round-robin", 2, 0.7, 2.5463, 12.1071),
    ("round-robin", 2, 0.8, 3.6951, 16.6786),
    ("round-robin", 2, 0.9, 6.6008, 30.1785),
    ("round-robin", 2, 0.95, 12.0987, 48.3652),
    ("round-robin", 4, 0.1, 0.9966, 4.5169),
    ("round-robin", 4, 0.2, 1.0356, 4.7381),
    ("round-robin", 4, 0.3, 1.1111, 5.1669),
    ("round-robin", 4, 0.4, 1.2307, 5.7449),
    ("round-robin", 4, 0.5, 1.4082, 6.52),
    ("round-robin", 4, 0.6, 1.6857, 7.7947),
    ("round-robin", 4, 0.7, 2.1482, 9.5821),
    ("round-robin", 4, 0.8, 3.042, 12.8745),
    ("round-robin", 4, 0.9, 5.3676, 22.0894),
    ("round-robin", 4, 0.95, 10.4034, 52.167),
    ("round-robin", 8, 0.1, 0.9915, 4.4812),
    ("round-robin", 8, 0.2, 1.0116, 4.6183),
    ("round-robin", 8, 0.3, 1.0654, 4.8635),
    ("round-robin", 8, 0.4, 1.1597, 5.2663),
    ("round-robin", 8, 0.5, 1.3102, 5.9921),
    ("round-robin", 8, 0.6, 1.5564, 7.2249),
    ("round-robin", 8, 0.7, 1.9751, 9.1105),
    ("round-robin", 8, 0.8, 2.7673, 12.5477),
    ("round-robin", 8, 0.9, 4.8731, 24.0549),
    ("round-robin", 8, 0.95, 8.296, 35.3439),
    ("round-robin", 16, 0.1, 0.9901, 4.4816),
    ("round-robin", 16, 0.2, 1.0021, 4.5387),
    ("round-robin", 16, 0.3, 1.0441, 4.7107),
    ("round-robin", 16, 0.4, 1.1264, 5.1118),
    ("round-robin", 16, 0.5, 1.2622, 5.7658),
    ("round-robin", 16, 0.6, 1.4801, 6.6469),
    ("round-robin", 16, 0.7, 1.8575, 8.1032),
    ("round-robin", 16, 0.8, 2.591, 11.0717),
    ("round-robin", 16, 0.9, 4.5217, 17.9845),
    ("round-robin", 16, 0.95, 8.0408, 37.3893),
    ("round-robin", 32, 0.1, 0.9897, 4.4763),
    ("round-robin", 32, 0.2, 0.9986, 4.5355),
    ("round-robin", 32, 0.3, 1.0361, 4.7496),
    ("round-robin", 32, 0.4, 1.1143, 5.0633),
    ("round-robin", 32, 0.5, 1.2446, 5.632),
    ("round-robin", 32, 0.6, 1.4599, 6.4754),
    ("round-robin", 32, 0.7, 1.8219, 8.0627),
    ("round-robin", 32, 0.8, 2.5593, 11.3541),
    ("round-robin", 32, 0.9, 4.6595, 20.2942),
    ("round-robin", 32, 0.95, 7.6078, 36.5367),
    ("least-connections", 2, 0.1, 1.0054, 4.5598),
    ("least-connections", 2, 0.2, 1.0538, 4.828),
    ("least-connections", 2, 0.3, 1.131, 5.1162),
    ("least-connections", 2, 0.4, 1.2472, 5.6571),
    ("least-connections", 2, 0.5, 1.4201, 6.3093),
    ("least-connections", 2, 0.6, 1.677, 7.6242),
    ("least-connections", 2, 0.7, 2.0873, 9.4872),
    ("least-connections", 2, 0.8, 2.8548, 12.7961),
    ("least-connections", 2, 0.9, 5.0179, 27.8502),
    ("least-connections", 2, 0.95, 8.7513, 39.5007),
    ("least-connections", 4, 0.1, 0.9902, 4.4763),
    ("least-connections", 4, 0.2, 0.9983, 4.5246),
    ("least-connections", 4, 0.3, 1.0214, 4.668),
    ("least-connections", 4, 0.4, 1.0694, 4.8635),
    ("least-connections", 4, 0.5, 1.1467, 5.1742),
    ("least-connections", 4, 0.6, 1.2743, 5.8151),
    ("least-connections", 4, 0.7, 1.4844, 6.5838),
    ("least-connections", 4, 0.8, 1.9069, 8.1415),
    ("least-connections", 4, 0.9, 2.9934, 14.1108),
    ("least-connections", 4, 0.95, 4.846, 20.8475),
    ("least-connections", 8, 0.1, 0.9895, 4.4763),
    ("least-connections", 8, 0.2, 0.9899, 4.4763),
    ("least-connections", 8, 0.3, 0.9931, 4.5155),
    ("least-connections", 8, 0.4, 1.0055, 4.5598),
    ("least-connections", 8, 0.5, 1.0345, 4.6902),
    ("least-connections", 8, 0.6, 1.0935, 4.9728),
    ("least-connections", 8, 0.7, 1.2015, 5.2963),
    ("least-connections", 8, 0.8, 1.4223, 6.1579),
    ("least-connections", 8, 0.9, 2.0224, 8.8527),
    ("least-connections", 8, 0.95, 2.9855, 11.7497),
    ("least-connections", 16, 0.1, 0.9895, 4.4763),
    ("least-connections", 16, 0.2, 0.9895, 4.4763),
    ("least-connections", 16, 0.3, 0.9896, 4.4763),
    ("least-connections", 16, 0.4, 0.9917, 4.4846),
    ("least-connections", 16, 0.5, 0.9958, 4.5355),
    ("least-connections", 16, 0.6, 1.013, 4.6183),
    ("least-connections", 16, 0.7, 1.0642, 4.8727),
    ("least-connections", 16, 0.8, 1.1816, 5.2682),
    ("least-connections", 16, 0.9, 1.5187, 6.347),
    ("least-connections", 16, 0.95, 2.0192, 7.8874),
    ("least-connections", 32, 0.1, 0.9895, 4.4763),
    ("least-connections", 32, 0.2, 0.9895, 4.4763),
    ("least-connections", 32, 0.3, 0.9895, 4.4763),
    ("least-connections", 32, 0.4, 0.9895, 4.4763),
    ("least-connections", 32, 0.5, 0.9896, 4.4763),
    ("least-connections", 32, 0.6, 0.9903, 4.4816),
    ("least-connections", 32, 0.7, 1.0031, 4.5528),
    ("least-connections", 32, 0.8, 1.0574, 4.8323),
    ("least-connections", 32, 0.9, 1.2372, 5.273),
    ("least-connections", 32, 0.95, 1.5261, 6.0721),
    ("power-of-two", 2, 0.1, 1.0053, 4.5387),
    ("power-of-two", 2, 0.2, 1.055, 4.7489),
    ("power-of-two", 2, 0.3, 1.134, 5.1384),
    ("power-of-two", 2, 0.4, 1.2471, 5.5426),
    ("power-of-two", 2, 0.5, 1.4216, 6.3436),
    ("power-of-two", 2, 0.6, 1.6743, 7.5695),
    ("power-of-two", 2, 0.7, 2.0941, 9.5543),
    ("power-of-two", 2, 0.8, 2.8538, 12.5846),
    ("power-of-two", 2, 0.9, 5.0394, 28.277),
    ("power-of-two", 2, 0.95, 8.7578, 40.4869),
    ("power-of-two", 4, 0.1, 1.0023, 4.549),
    ("power-of-two", 4, 0.2, 1.0383, 4.7277),
    ("power-of-two", 4, 0.3, 1.1006, 5.0187),
    ("power-of-two", 4, 0.4, 1.1927, 5.4311),
    ("power-of-two", 4, 0.5, 1.3156, 5.8899),
    ("power-of-two", 4, 0.6, 1.4912, 6.4842),
    ("power-of-two", 4, 0.7, 1.7613, 7.3722),
    ("power-of-two", 4, 0.8, 2.2524, 8.9953),
    ("power-of-two", 4, 0.9, 3.4893, 15.31),
    ("power-of-two", 4, 0.95, 5.4474, 21.7957),
    ("power-of-two", 8, 0.1, 1.001, 4.5246),
    ("power-of-two", 8, 0.2, 1.035, 4.6902),
    ("power-of-two", 8, 0.3, 1.0899, 5.004),
    ("power-of-two", 8, 0.4, 1.17, 5.2866),
    ("power-of-two", 8, 0.5, 1.2766, 5.5666),
    ("power-of-two", 8, 0.6, 1.4264, 6.0137),
    ("power-of-two", 8, 0.7, 1.6564, 6.7681),
    ("power-of-two", 8, 0.8, 2.0569, 7.7451),
    ("power-of-two", 8, 0.9, 2.8803, 10.3288),
    ("power-of-two", 8, 0.95, 4.0853, 13.5846),
    ("power-of-two", 16, 0.1, 0.9995, 4.5381),
    ("power-of-two", 16, 0.2, 1.0323, 4.7276),
    ("power-of-two", 16, 0.3, 1.0836, 4.9515),
    ("power-of-two", 16, 0.4, 1.163, 5.1687),
    ("power-of-two", 16, 0.5, 1.2585, 5.4599),
    ("power-of-two", 16, 0.6, 1.4097, 6.0321),
    ("power-of-two", 16, 0.7, 1.6148, 6.5975),
    ("power-of-two", 16, 0.8, 1.9955, 7.4582),
    ("power-of-two", 16, 0.9, 2.7425, 9.2912),
    ("power-of-two", 16, 0.95, 3.6303, 11.3978),
    ("power-of-two", 32, 0.1, 1.0004, 4.5215),
    ("power-of-two", 32, 0.2, 1.0301, 4.6719),
    ("power-of-two", 32, 0.3, 1.0777, 4.9072),
    ("power-of-two", 32, 0.4, 1.1519, 5.2274),
    ("power-of-two", 32, 0.5, 1.2578, 5.5405),
    ("power-of-two", 32, 0.6, 1.3958, 5.9287),
    ("power-of-two", 32, 0.7, 1.6056, 6.5743),
    ("power-of-two", 32, 0.8, 1.9288, 7.227),
    ("power-of-two", 32, 0.9, 2.6276, 8.8157),
    ("power-of-two", 32, 0.95, 3.3896, 10.2696),
    ("central-queue", 2, 0.1, 0.9982, 4.4942),
    ("central-queue", 2, 0.2, 1.0291, 4.5655),
    ("central-queue", 2, 0.3, 1.0863, 4.7382),
    ("central-queue", 2, 0.4, 1.1798, 5.0237),
    ("central-queue", 2, 0.5, 1.324, 5.6851),
    ("central-queue", 2, 0.6, 1.5581, 6.8132),
    ("central-queue", 2, 0.7, 1.9443, 8.7604),
    ("central-queue", 2, 0.8, 2.6817, 11.6477),
    ("central-queue", 2, 0.9, 4.8264, 28.4297),
    ("central-queue", 2, 0.95, 8.5258, 39.7103),
    ("central-queue", 4, 0.1, 0.9897, 4.4763),
    ("central-queue", 4, 0.2, 0.9927, 4.4816),
    ("central-queue", 4, 0.3, 1.0033, 4.4846),
    ("central-queue", 4, 0.4, 1.0299, 4.5914),
    ("central-queue", 4, 0.5, 1.0805, 4.6902),
    ("central-queue", 4, 0.6, 1.1715, 4.9909),
    ("central-queue", 4, 0.7, 1.339, 5.4679),
    ("central-queue", 4, 0.8, 1.692, 6.6456),
    ("central-queue", 4, 0.9, 2.7426, 14.6315),
    ("central-queue", 4, 0.95, 4.5719, 20.1311),
    ("central-queue", 8, 0.1, 0.9895, 4.4763),
    ("central-queue", 8, 0.2, 0.9896, 4.4763),
    ("central-queue", 8, 0.3, 0.9904, 4.4816),
    ("central-queue", 8, 0.4, 0.995, 4.4837),
    ("central-queue", 8, 0.5, 1.0074, 4.4942),
    ("central-queue", 8, 0.6, 1.0374, 4.5459),
    ("central-queue", 8, 0.7, 1.1032, 4.6709),
    ("central-queue", 8, 0.8, 1.2638, 5.0005),
    ("central-queue", 8, 0.9, 1.7654, 7.7512),
    ("central-queue", 8, 0.95, 2.6537, 10.4066),
    ("central-queue", 16, 0.1, 0.9895, 4.4763),
    ("central-queue", 16, 0.2, 0.9895, 4.4763),
    ("central-queue", 16, 0.3, 0.9895, 4.4763),
    ("central-queue", 16, 0.4, 0.9899, 4.4763),
    ("central-queue", 16, 0.5, 0.9913, 4.4763),
    ("central-queue", 16, 0.6, 0.9968, 4.4835),
    ("central-queue", 16, 0.7, 1.0151, 4.5169),
    ("central-queue", 16, 0.8, 1.0792, 4.6183),
    ("central-queue", 16, 0.9, 1.3174, 5.1832),
    ("central-queue", 16, 0.95, 1.7504, 6.1525),
    ("central-queue", 32, 0.1, 0.9895, 4.4763),
    ("central-queue", 32, 0.2, 0.9895, 4.4763),
    ("central-queue", 32, 0.3, 0.9895, 4.4763),
    ("central-queue", 32, 0.4, 0.9895, 4.4763),
    ("central-queue", 32, 0.5, 0.9895, 4.4763),
    ("central-queue", 32, 0.6, 0.9896, 4.4763),
    ("central-queue", 32, 0.7, 0.9916, 4.4816),
    ("central-queue", 32, 0.8, 1.0112, 4.4942),
    ("central-queue", 32, 0.9, 1.1106, 4.6777),
    ("central-queue", 32, 0.95, 1.3136, 4.9304),
)
# fmt: on


@dataclass(frozen=True)
class PolicyCurves:
    """What ``lb-policy-latency`` draws: simulated points per policy and theory curves."""

    n_servers: int
    metric: str
    load: float
    loads: tuple[float, ...]
    simulated: dict[str, list[float]]
    theory_loads: np.ndarray
    theory: dict[str, np.ndarray]
    at_load: dict[str, float]  # simulated, at the table load nearest ``load``
    table_load: float
    theory_at_load: dict[str, float]


def _theory(metric: str, n: int, loads) -> dict[str, np.ndarray]:
    """Closed forms in units of the mean service time (mu = 1)."""
    if metric == "p99":
        return {"random": np.array([mm1_latency_percentile(0.99, x) for x in loads])}
    return {
        "random": np.array([mm1_mean_time(x, 1.0) for x in loads]),
        "central-queue": np.array([1.0 + mmc_mean_wait(x * n, 1.0, n) for x in loads]),
        "power-of-two": np.array([power_of_d_mean_time(x, 2) for x in loads]),
    }


THEORY_NAMES = {
    "random": "M/M/1 (random)",
    "central-queue": "M/M/c, Erlang C (central queue)",
    "power-of-two": "Mitzenmacher n→∞ (power of two)",
}


def policy_latency(n_servers: int = 8, metric: str = "mean", load: float = 0.8) -> PolicyCurves:
    """Simulated latency per policy (from the table) and theory curves at ``n_servers``."""
    rows = [r for r in LATENCY_TABLE if r[1] == n_servers]
    column = 3 if metric == "mean" else 4
    simulated = {p: [r[column] for r in rows if r[0] == p] for p in POLICIES}
    table_load = min(TABLE_LOADS, key=lambda x: abs(x - load))
    at_load = {p: simulated[p][TABLE_LOADS.index(table_load)] for p in POLICIES}
    theory_loads = np.linspace(0.05, 0.96, 60)
    theory_at = {k: float(v[0]) for k, v in _theory(metric, n_servers, [load]).items()}
    return PolicyCurves(
        n_servers=n_servers,
        metric=metric,
        load=load,
        loads=TABLE_LOADS,
        simulated=simulated,
        theory_loads=theory_loads,
        theory=_theory(metric, n_servers, theory_loads),
        at_load=at_load,
        table_load=table_load,
        theory_at_load=theory_at,
    )


def policy_latency_figure(curves: PolicyCurves) -> go.Figure:
    data = []
    for policy in POLICIES:
        data.append(
            dict(
                type="scatter",
                mode="markers+lines",
                x=list(curves.loads),
                y=curves.simulated[policy],
                name=f"{policy} (simulated)",
                line=dict(color=POLICY_COLORS[policy], width=1),
                marker=dict(size=6),
            )
        )
    for policy, values in curves.theory.items():
        data.append(
            dict(
                type="scatter",
                mode="lines",
                x=curves.theory_loads,
                y=values,
                name=THEORY_NAMES[policy],
                line=dict(color=POLICY_COLORS[policy], dash="dash", width=2),
            )
        )
    what = "mean latency" if curves.metric == "mean" else "p99 latency"
    return new_figure(
        f"{what} vs utilisation, {curves.n_servers} servers (dashed: theory)",
        height=420,
        data=data,
        xaxis=dict(title="utilisation (load per server)", range=[0, 1]),
        yaxis=dict(title=f"{what} (x mean service time)", type="log"),
        shapes=[
            dict(
                type="line",
                x0=curves.load,
                x1=curves.load,
                y0=0,
                y1=1,
                yref="paper",
                line=dict(color="#888", dash="dot"),
            )
        ],
        legend=dict(font=dict(size=11)),
    )


def describe_policy_latency(curves: PolicyCurves) -> str:
    sim = ", ".join(f"{p} {v:.2f}" for p, v in curves.at_load.items())
    theory = ", ".join(f"{THEORY_NAMES[p]} {v:.2f}" for p, v in curves.theory_at_load.items())
    return (
        f"Simulated {curves.metric} at load {curves.table_load:g}: {sim}. "
        f"Theory at load {curves.load:g}: {theory}."
    )


policy_latency_explorer = explorer(
    "lb-policy-latency",
    policy_latency,
    policy_latency_figure,
    title="Load-balancing policies: latency vs load",
    describe=describe_policy_latency,
    n_servers=Choice(8, TABLE_SERVERS, label="servers"),
    metric=Choice("mean", ("mean", "p99"), label="latency"),
    load=Slider(0.8, 0.1, 0.95, step=0.05, label="utilisation"),
)


# --- a server dies ---------------------------------------------------------------------

FAILURE_SERVERS = 8
FAILURE_LOAD = 0.7
FAILURE_AT = 60.5  # between two health probes (they run at h, 2h, ...)
FAILURE_JOBS = 800
FAILURE_BIN = 5.0
HEALTH_CHECK_CHOICES = ("off", 1.0, 2.0, 5.0, 10.0)


def server_failure(
    policy: str = "round-robin",
    health_check_interval="off",
    retries: int = 0,
    timeout: float = 1.0,
    seed: int = 0,
) -> SimulationResult:
    """Server 0 of 8 dies at t = 60.5 (load 0.7, 800 requests): one small simulation."""
    return simulate(
        policy,
        FAILURE_SERVERS,
        FAILURE_LOAD,
        FAILURE_JOBS,
        seed,
        fail_at=FAILURE_AT,
        health_check_interval=None if health_check_interval == "off" else health_check_interval,
        retries=retries,
        timeout=timeout,
        bin_width=FAILURE_BIN,
    )


def server_failure_figure(result: SimulationResult) -> go.Figure:
    t = result.timeline
    x = (t["start"] + FAILURE_BIN / 2).tolist()
    crash = dict(
        type="line",
        x0=FAILURE_AT,
        x1=FAILURE_AT,
        y0=0,
        y1=1,
        yref="paper",
        line=dict(color=COLORS[3], dash="dot"),
    )
    return new_figure(
        f"server 0 of {FAILURE_SERVERS} dies at t = {FAILURE_AT:g} ({result.policy})",
        height=420,
        data=[
            dict(
                type="bar",
                x=x,
                y=np.nan_to_num(t["error_rate"]).tolist(),
                name="error rate",
                marker=dict(color=COLORS[3]),
                yaxis="y2",
            ),
            dict(
                type="scatter",
                mode="lines",
                x=x,
                y=t["mean_latency"].tolist(),
                name="mean latency of successes",
                line=dict(color=COLORS[0]),
            ),
        ],
        xaxis=dict(title="time (x mean service time), by arrival"),
        yaxis=dict(title="mean latency", domain=[0, 0.45], rangemode="tozero"),
        yaxis2=dict(title="error rate", domain=[0.55, 1], range=[0, 0.5], tickformat=".0%"),
        shapes=[crash],
        bargap=0.1,
        showlegend=False,
    )


def describe_server_failure(result: SimulationResult) -> str:
    return (
        f"errors {result.error_rate:.1%} of requests, retried {result.retried:.1%}; "
        f"latency of successes: mean {result.mean:.2f}, p99 {result.p99:.2f}"
    )


server_failure_explorer = explorer(
    "lb-server-failure",
    server_failure,
    server_failure_figure,
    title="A server dies: health checks and retries",
    describe=describe_server_failure,
    policy=Choice("round-robin", POLICIES[:-1], label="policy"),
    health_check_interval=Choice("off", HEALTH_CHECK_CHOICES, label="health check every"),
    retries=Slider(0, 0, 3, integer=True, label="retries"),
    timeout=Slider(1.0, 0.1, 10.0, log=True, label="client timeout"),
)
