"""Load balancing: the SimPy cluster held to queueing theory, the policies' ordering, what a
dead server does to clients, argument checking, determinism, and the explorers' table.

Tolerances. Every simulation runs with the fixed seed 0. A mean estimated from N jobs of
a queue at utilisation 0.9 is noisy (neighbouring jobs wait alike): across seeds, the
simulated Erlang C wait at 2 servers, 200,000 jobs, scatters with a standard deviation of
about 3.5% (about 1.4% at 0.5 and 100,000 jobs), measured over 20 seeds. The 5% tolerance
is therefore a check at the fixed seed, not a guarantee for every seed; seed 0 is the
first seed tried, not one picked to pass (its gaps are below 1.5%, printed in the
notebook).
"""

from __future__ import annotations

import math
import time

import pytest

from sysdesign.scaling import loadbalancing as lb
from sysdesign.scaling import loadbalancing_explorers as lbx
from sysdesign.theory import mm1_mean_time, mmc_mean_wait, power_of_d_mean_time

SEED = 0


@pytest.mark.parametrize(
    ("load", "n_jobs"),
    [(0.5, 100_000), pytest.param(0.9, 200_000, marks=pytest.mark.slow)],  # about 5 s
)
def test_central_queue_wait_matches_erlang_c(load, n_jobs):
    """One shared queue in front of 2 servers is M/M/2: mean wait within 5% of Erlang C."""
    r = lb.simulate("central-queue", 2, load, n_jobs, SEED)
    assert r.mean_wait == pytest.approx(mmc_mean_wait(2 * load, 1.0, 2), rel=0.05)
    assert r.mean == pytest.approx(r.mean_wait + 1.0, rel=0.02)  # latency = wait + service


@pytest.mark.parametrize(("load", "n_jobs"), [(0.5, 50_000), (0.8, 100_000)])
def test_random_assignment_matches_mm1(load, n_jobs):
    """Random assignment splits Poisson traffic into Poisson streams: M/M/1 per server."""
    r = lb.simulate("random", 2, load, n_jobs, SEED)
    assert r.mean == pytest.approx(mm1_mean_time(load, 1.0), rel=0.05)
    # M/M/1 time in system is exponential: p95 and p99 have closed forms too
    assert r.p95 == pytest.approx(lb.mm1_latency_percentile(0.95, load), rel=0.05)
    assert r.p99 == pytest.approx(lb.mm1_latency_percentile(0.99, load), rel=0.08)


def test_power_of_two_at_100_servers_is_near_mitzenmacher_limit():
    """Mitzenmacher's T_2 is the n -> infinity limit, which treats queue lengths as
    independent; at finite n they are correlated and the simulation sits above it (the
    notebook measures +12.6% at 8 servers, +1.0% at 32, +0.1% at 100). So at n = 100:
    at least the limit minus 2% (noise), at most 5% above it."""
    r = lb.simulate("power-of-two", 100, 0.9, 50_000, SEED)
    limit = power_of_d_mean_time(0.9, 2)
    assert limit * 0.98 <= r.mean <= limit * 1.05
    # and it is far better than random assignment (the d = 1 case): 2.6 against 10
    assert r.mean < 0.3 * power_of_d_mean_time(0.9, 1)


def test_policy_ordering_at_high_load():
    """Same arrivals and services for every policy: more information, less waiting."""
    results = lb.compare_policies(4, 0.9, n_jobs=10_000, seed=SEED)
    mean = {name: r.mean for name, r in results.items()}
    assert (
        mean["central-queue"] <= mean["least-connections"] <= mean["round-robin"] <= mean["random"]
    )
    assert mean["least-connections"] <= mean["power-of-two"] <= mean["random"]
    for r in results.values():
        assert r.p50 <= r.p95 <= r.p99
        assert r.error_rate == 0.0


def test_a_dead_server_without_defences_fails_about_its_share_of_requests():
    r = lbx.server_failure(policy="round-robin", health_check_interval="off", retries=0)
    after = (lbx.FAILURE_JOBS - lbx.FAILURE_AT * lbx.FAILURE_LOAD * lbx.FAILURE_SERVERS) / (
        lbx.FAILURE_JOBS * 0.9
    )  # fraction of measured requests sent after the crash (roughly)
    assert r.error_rate == pytest.approx(after / lbx.FAILURE_SERVERS, rel=0.25)
    # the failures are all after the crash
    t = r.timeline
    assert all(
        e == 0 for s, e in zip(t["start"], t["error_rate"], strict=True) if s + 5 <= lbx.FAILURE_AT
    )


def test_health_checks_stop_errors_after_detection():
    without = lbx.server_failure(health_check_interval="off")
    with_checks = lbx.server_failure(health_check_interval=2.0)
    assert with_checks.error_rate < 0.1 * without.error_rate
    # errors only between the crash and the first probe after it (plus one timeout)
    t = with_checks.timeline
    detected = math.ceil(lbx.FAILURE_AT / 2.0) * 2.0
    late = [e for s, e in zip(t["start"], t["error_rate"], strict=True) if s > detected + 1.0]
    assert late and all(e == 0 for e in late)
    # seven servers now carry the load of eight: survivors are slower
    assert with_checks.mean > without.mean


def test_retries_turn_errors_into_latency():
    without = lbx.server_failure(retries=0)
    retried = lbx.server_failure(retries=1)
    assert without.error_rate > 0.05
    assert retried.error_rate == 0.0
    assert retried.retried == pytest.approx(without.error_rate, rel=0.2)
    assert retried.p99 > without.p99  # a retried request paid a timeout first


def test_least_connections_sends_more_traffic_to_a_fast_failing_server():
    """A dead server answers nothing, its connections time out and it looks idle: least
    connections picks it more often than its 1/n share (a "black hole")."""
    lc = lb.simulate("least-connections", 8, 0.7, 2000, SEED, fail_at=100.0, timeout=1.0)
    rr = lb.simulate("round-robin", 8, 0.7, 2000, SEED, fail_at=100.0, timeout=1.0)
    assert lc.error_rate > 1.3 * rr.error_rate


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        (dict(policy="fastest"), "policy"),
        (dict(n_servers=0), "n_servers"),
        (dict(load=1.0), "load"),
        (dict(load=-0.1), "load"),
        (dict(n_jobs=0), "n_jobs"),
        (dict(seed=-1), "seed"),
        (dict(retries=-1), "retries"),
        (dict(timeout=0), "timeout"),
        (dict(fail_at=-1.0), "fail_at"),
        (dict(fail_at=5.0, health_check_interval=0), "health_check_interval"),
        (dict(policy="central-queue", fail_at=5.0), "fail_at"),
        (dict(n_servers=1, fail_at=5.0), "n_servers"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, names):
    args = dict(policy="random", n_servers=4, load=0.5, n_jobs=100, seed=0) | kwargs
    with pytest.raises(ValueError, match=names):
        lb.simulate(**args)


def test_bad_power_of_d_and_percentile_arguments():
    with pytest.raises(ValueError, match="d must"):
        lb.PowerOfChoices(0)
    with pytest.raises(ValueError, match="q must"):
        lb.mm1_latency_percentile(1.0, 0.5)


def test_same_seed_same_result_different_seed_different_result():
    a = lb.simulate("power-of-two", 8, 0.8, 3000, 7, fail_at=50.0, health_check_interval=5.0)
    b = lb.simulate("power-of-two", 8, 0.8, 3000, 7, fail_at=50.0, health_check_interval=5.0)
    c = lb.simulate("power-of-two", 8, 0.8, 3000, 8, fail_at=50.0, health_check_interval=5.0)
    assert a == b
    assert a != c


def test_policies_choose_what_they_say():
    import random

    rng = random.Random(0)
    rr = lb.RoundRobin()
    assert [rr.choose([0, 1, 2], [0, 0, 0], rng) for _ in range(4)] == [0, 1, 2, 0]
    assert lb.LeastConnections().choose([0, 1, 2], [3, 1, 2], rng) == 1
    assert lb.PowerOfChoices(3).choose([0, 1, 2], [3, 1, 2], rng) == 1  # samples them all
    picks = {lb.RandomChoice().choose([4, 5], [0] * 6, rng) for _ in range(50)}
    assert picks == {4, 5}


def test_precomputed_table_is_what_simulate_gives():
    """The explorer's table is the package's own simulation (two rows re-run)."""
    for policy, load in [("least-connections", 0.9), ("random", 0.5)]:
        row = next(r for r in lbx.LATENCY_TABLE if r[:3] == (policy, 2, load))
        r = lb.simulate(policy, 2, load, lbx.TABLE_JOBS, lbx.TABLE_SEED)
        assert row[3:] == (round(r.mean, 4), round(r.p99, 4))
    assert len(lbx.LATENCY_TABLE) == len(lb.POLICIES) * len(lbx.TABLE_SERVERS) * len(
        lbx.TABLE_LOADS
    )


def test_explorers_are_fast_and_draw_theory():
    curves = lbx.policy_latency_explorer.compute(n_servers=8, metric="mean", load=0.9)
    assert set(curves.theory) == {"random", "central-queue", "power-of-two"}
    assert curves.theory_at_load["random"] == pytest.approx(10.0)
    fig = lbx.policy_latency_explorer.figure(curves)
    assert len(fig.data) == len(lb.POLICIES) + 3
    start = time.perf_counter()
    lbx.server_failure_explorer.render(retries=1, health_check_interval=5.0)
    assert time.perf_counter() - start < 1.0  # the benchmark holds the real target
    with pytest.raises(ValueError, match="retries"):
        lbx.server_failure_explorer.compute(retries=9)
