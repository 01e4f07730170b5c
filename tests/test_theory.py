"""sysdesign.theory against values worked out by hand and known limits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sysdesign import theory


def test_erlang_c_known_values():
    assert theory.erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert theory.erlang_c(2, 1.0) == pytest.approx(1 / 3)  # by hand from the formula
    assert theory.erlang_c(3, 0) == 0
    # The textbook formula, term by term, for a mid-size case.
    c, a = 10, 8.0
    top = a**c / math.factorial(c) * c / (c - a)
    bottom = sum(a**k / math.factorial(k) for k in range(c)) + top
    assert theory.erlang_c(c, a) == pytest.approx(top / bottom, rel=1e-12)
    assert 0 < theory.erlang_c(500, 490) < 1  # the recursion stays stable at scale


def test_queue_times():
    assert theory.mm1_mean_time(0.5, 1) == pytest.approx(2.0)
    assert theory.mm1_mean_time(9, 10) == pytest.approx(1.0)
    assert theory.mmc_mean_wait(1, 1, 2) == pytest.approx(1 / 3)
    # One server: Wq = rho / (mu - lambda).
    assert theory.mmc_mean_wait(0.9, 1, 1) == pytest.approx(0.9 / 0.1)


def test_power_of_d():
    assert theory.power_of_d_mean_time(0.9, 1) == pytest.approx(10.0)
    by_hand = sum(0.9 ** (2**i - 2) for i in range(1, 12))
    assert theory.power_of_d_mean_time(0.9, 2) == pytest.approx(by_hand, rel=1e-12)
    assert theory.power_of_d_mean_time(0.9, 2) == pytest.approx(2.6141, abs=1e-4)
    # More choices help, with diminishing returns; never below the service time 1.
    t = [theory.power_of_d_mean_time(0.9, d) for d in (1, 2, 3, 10)]
    assert t == sorted(t, reverse=True) and t[-1] > 1


def test_zipf_and_che():
    p = theory.zipf_popularity(4, 1.0)
    assert p == pytest.approx(np.array([1, 1 / 2, 1 / 3, 1 / 4]) / (25 / 12))
    uniform = theory.zipf_popularity(1000, 0)
    assert theory.che_hit_ratio(uniform, 250) == pytest.approx(0.25, rel=1e-9)
    zipf = theory.zipf_popularity(10_000, 0.8)
    ratios = [theory.che_hit_ratio(zipf, c) for c in (0, 10, 100, 1000, 10_000)]
    assert ratios[0] == 0 and ratios[-1] == 1 and ratios == sorted(ratios)
    # LRU never beats the static optimum (cache the most popular items).
    assert ratios[2] < zipf[:100].sum()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: theory.erlang_c(2, 2), "unstable queue: offered_load 2 must be below servers 2"),
        (lambda: theory.erlang_c(0, 0.5), "servers must be a whole number of at least 1"),
        (lambda: theory.mm1_mean_time(1, 1), "unstable queue: arrival_rate 1 must be below"),
        (lambda: theory.mmc_mean_wait(3, 1, 2), "unstable queue"),
        (lambda: theory.mmc_mean_wait(-1, 1, 2), "arrival_rate must be a number greater than 0"),
        (lambda: theory.power_of_d_mean_time(1.2, 2), "unstable queue: load must be below 1"),
        (lambda: theory.power_of_d_mean_time(0.5, 0), "d must be a whole number of at least 1"),
        (lambda: theory.zipf_popularity(10, -1), "alpha must be a number of at least 0"),
        (lambda: theory.che_hit_ratio([0.5, 0.6], 1), "popularity must sum to 1"),
        (lambda: theory.che_hit_ratio([], 1), "non-empty"),
        (lambda: theory.che_hit_ratio([1.0], -1), "cache_size must be a whole number"),
    ],
)
def test_bad_arguments_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()
