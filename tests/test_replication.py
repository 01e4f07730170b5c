"""Replication: closed forms, the SimPy leader-follower run and the Monte Carlo runs held
to them at several operating points (fixed seeds, stated tolerances)."""

import math

import numpy as np
import pytest

from sysdesign.explore import REGISTRY
from sysdesign.scaling import replication as repl
from sysdesign.scaling import replication_explorers as rx

# --- closed forms -----------------------------------------------------------------------


def test_stale_read_closed_form_values():
    # w L = 1: a follower is stale half the time; random over 1 leader + 2 followers: 1/3
    assert repl.stale_read_probability(write_rate=2, mean_lag=0.5, routing="follower") == 0.5
    p = repl.stale_read_probability(write_rate=2, mean_lag=0.5, followers=2, routing="random")
    assert p == pytest.approx(1 / 3)
    assert repl.stale_read_probability(write_rate=2, mean_lag=0.5, routing="leader") == 0


def test_stale_read_closed_form_matches_its_integral():
    w, lag = 3.0, 0.2
    a = np.linspace(0, 50, 200_001)
    integral = np.trapezoid(w * np.exp(-w * a) * np.exp(-a / lag), a)
    assert repl.stale_read_probability(
        write_rate=w, mean_lag=lag, routing="follower"
    ) == pytest.approx(integral, rel=1e-4)


def test_read_your_writes_by_routing():
    kw = dict(read_delay=0.1, mean_lag=0.1, followers=3)
    assert repl.read_your_writes_violation(**kw, routing="random") == pytest.approx(
        0.75 * math.exp(-1)
    )
    assert repl.read_your_writes_violation(**kw, routing="leader") == 0
    assert repl.read_your_writes_violation(**kw, routing="sticky", sticky_window=0.2) == 0
    assert repl.read_your_writes_violation(
        **kw, routing="sticky", sticky_window=0.05
    ) == pytest.approx(0.75 * math.exp(-1))


def test_quorum_closed_forms():
    assert repl.quorum_stale_probability(3, 2, 2) == 0  # R + W > N
    assert repl.quorum_stale_probability(5, 3, 3) == 0
    assert repl.quorum_stale_probability(3, 1, 1) == pytest.approx(2 / 3)
    assert repl.quorum_stale_probability(10, 2, 3) == pytest.approx(
        math.comb(7, 2) / math.comb(10, 2)
    )
    # staleness decays with time since the write, and is 0 long after it
    early = repl.quorum_stale_probability(5, 1, 1, t=0.01, mean_lag=0.1)
    late = repl.quorum_stale_probability(5, 1, 1, t=0.3, mean_lag=0.1)
    assert 0.8 > early > late > 0
    assert repl.quorum_stale_probability(5, 1, 1, t=10, mean_lag=0.1) < 1e-12
    assert repl.quorum_availability(3, 2, 0.1) == pytest.approx(0.9**3 + 3 * 0.9**2 * 0.1)
    assert repl.quorum_availability(5, 0, 0.7) == 1


# --- simulations against the closed forms -----------------------------------------------


@pytest.mark.parametrize(
    "followers, mean_lag, write_rate, routing",
    [(2, 0.1, 2.0, "random"), (1, 0.5, 1.0, "random"), (3, 0.05, 5.0, "leader")],
)
def test_simpy_stale_reads_and_read_your_writes_match_theory(
    followers, mean_lag, write_rate, routing
):
    run = repl.simulate_leader_follower(
        followers=followers, mean_lag=mean_lag, write_rate=write_rate, keys=10,
        read_rate=200, read_delay=0.05, routing=routing, duration=60, seed=3,
    )  # fmt: skip
    stale = repl.stale_read_probability(
        write_rate=write_rate, mean_lag=mean_lag, followers=followers, routing=routing
    )
    ryw = repl.read_your_writes_violation(
        read_delay=0.05, mean_lag=mean_lag, followers=followers, routing=routing
    )
    assert run.reads > 10_000 and run.own_reads > 500
    assert run.stale_fraction == pytest.approx(stale, abs=0.02)
    assert run.ryw_fraction == pytest.approx(ryw, abs=0.04)


def test_simpy_sticky_routing_removes_read_your_writes_violations():
    common = dict(followers=2, mean_lag=0.2, write_rate=2.0, keys=10, read_delay=0.05,
                  duration=40, seed=5)  # fmt: skip
    sticky = repl.simulate_leader_follower(**common, routing="sticky", sticky_window=0.1)
    random = repl.simulate_leader_follower(**common, routing="random")
    assert sticky.ryw_violations == 0
    assert random.ryw_fraction > 0.3
    # sticky only protects one's own writes: other reads are as stale as random routing
    assert sticky.stale_fraction == pytest.approx(random.stale_fraction, abs=0.03)


def test_simpy_failover_probe_matches_littles_law():
    run = repl.simulate_leader_follower(
        followers=2, mean_lag=0.1, write_rate=2.0, keys=20, read_rate=10, duration=100, seed=2
    )
    total_rate = 2.0 * 20
    assert run.lost_random == pytest.approx(total_rate * 0.1, rel=0.1)
    assert run.lost_merged == pytest.approx(total_rate * 0.1 / 2, rel=0.1)


@pytest.mark.parametrize("rate, lag, followers", [(40, 0.1, 2), (100, 0.05, 3), (10, 0.02, 1)])
def test_failover_losses_are_poisson_with_mean_rate_times_lag(rate, lag, followers):
    losses = repl.failover_losses(
        write_rate=rate, mean_lag=lag, followers=followers, crashes=4000, seed=1
    )
    mean = rate * lag
    assert losses.random_follower.mean() == pytest.approx(mean, rel=0.05, abs=0.02)
    assert losses.random_follower.var() == pytest.approx(mean, rel=0.1, abs=0.02)  # Poisson
    assert (losses.random_follower == 0).mean() == pytest.approx(math.exp(-mean), abs=0.02)
    assert losses.merged.mean() == pytest.approx(mean / followers, rel=0.06, abs=0.02)
    means = losses.means()
    assert means["merged"] <= means["best_follower"] <= means["random_follower"]


@pytest.mark.parametrize(
    "n, r, w, t", [(3, 1, 1, 0), (5, 1, 2, 0), (10, 2, 3, 0), (5, 1, 1, 0.05), (3, 2, 2, 0)]
)
def test_quorum_monte_carlo_matches_pbs(n, r, w, t):
    sampled = repl.quorum_stale_monte_carlo(n, r, w, t=t, mean_lag=0.1, trials=40_000, seed=0)
    assert sampled == pytest.approx(
        repl.quorum_stale_probability(n, r, w, t=t, mean_lag=0.1), abs=0.01
    )


@pytest.mark.parametrize("n, k, f", [(3, 2, 0.1), (5, 3, 0.3), (9, 5, 0.5)])
def test_availability_monte_carlo_matches_binomial_tail(n, k, f):
    sampled = repl.availability_monte_carlo(n, k, f, trials=40_000, seed=0)
    assert sampled == pytest.approx(repl.quorum_availability(n, k, f), abs=0.01)


# --- determinism and validation ---------------------------------------------------------


def test_same_seed_same_numbers():
    kw = dict(duration=5, seed=9)
    assert repl.simulate_leader_follower(**kw) == repl.simulate_leader_follower(**kw)
    a = repl.failover_losses(write_rate=50, mean_lag=0.1, followers=2, crashes=50, seed=4)
    b = repl.failover_losses(write_rate=50, mean_lag=0.1, followers=2, crashes=50, seed=4)
    assert np.array_equal(a.best_follower, b.best_follower)
    assert rx.repl_quorum.compute().stale_sampled.tolist() == (
        rx.repl_quorum.compute().stale_sampled.tolist()
    )


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: repl.stale_read_probability(write_rate=0, mean_lag=1), "write_rate"),
        (lambda: repl.stale_read_probability(write_rate=1, mean_lag=-1), "mean_lag"),
        (lambda: repl.read_your_writes_violation(read_delay=1, mean_lag=1, routing="x"), "routing"),
        (lambda: repl.quorum_stale_probability(3, 4, 1), "r"),
        (lambda: repl.quorum_stale_probability(3, 1, 0), "w"),
        (lambda: repl.quorum_availability(3, 2, 1.5), "node_failure"),
        (lambda: repl.simulate_leader_follower(followers=0), "followers"),
        (lambda: repl.simulate_leader_follower(routing="nearest"), "routing"),
        (lambda: repl.expected_lost_writes(write_rate=1, mean_lag=1, promote="x"), "promote"),
        (lambda: rx.quorum_view(quorum="N=4", mean_lag_ms=10), "quorum"),
    ],
)
def test_bad_arguments_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        call()


# --- explorers --------------------------------------------------------------------------


def test_explorers_registered_and_monte_carlo_near_theory():
    stale = rx.repl_stale_reads.compute()
    theory_at_samples = np.interp(
        np.log(stale.sample_lag_ms), np.log(stale.lag_ms), stale.stale_theory
    )
    assert np.max(np.abs(stale.stale_sampled - theory_at_samples)) < 0.04
    assert rx.repl_stale_reads.compute(routing="leader").ryw_sampled.max() == 0
    quorum = rx.repl_quorum.compute(quorum="N=3 R=2 W=2")
    assert quorum.stale_sampled.max() == 0 and quorum.stale_theory.max() == 0
    view = rx.repl_failover.compute()
    assert view.means["random_follower"] == pytest.approx(view.expected["random_follower"], rel=0.1)
    for name in ("repl-stale-reads", "repl-quorum", "repl-failover"):
        assert name in REGISTRY
