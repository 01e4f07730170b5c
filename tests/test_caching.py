"""Caches: each policy evicts what it should, simulations agree with theory (Che's
approximation for LRU within 2 points, the FIFO approximation, top-C for perfect LFU),
cache-aside counts database loads, a stampede's fixes load once, the CDN model matches
Che, and the explorers return sane results."""

from __future__ import annotations

import numpy as np
import pytest

from sysdesign.explore import REGISTRY
from sysdesign.scaling import caching_explorers  # noqa: F401 (registers the explorers)
from sysdesign.scaling.caching import (
    CacheAside,
    FIFOCache,
    LFUCache,
    LRUCache,
    PerfectLFUCache,
    SlowStore,
    TTLCache,
    cdn,
    fifo_hit_ratio,
    hit_ratio_curves,
    lfu_optimum_hit_ratio,
    make_cache,
    replay,
    stampede,
    theory_curve,
    zipf_trace,
)
from sysdesign.store import connect
from sysdesign.theory import che_hit_ratio, zipf_popularity

# --- the policies, step by step -------------------------------------------------------------


def test_lru_evicts_least_recently_used_and_counts():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # b is now the least recently used
    cache.put("c", 3)
    assert "b" not in cache and cache.get("b") is None
    assert (cache.get("a"), cache.get("c"), len(cache)) == (1, 3, 2)
    assert (cache.hits, cache.misses) == (3, 1)
    assert cache.hit_ratio == 0.75


def test_fifo_ignores_reads():
    cache = FIFOCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)  # a was inserted first: it goes, although it was just read
    assert cache.get("a") is None and cache.get("b") == 2


def test_lfu_evicts_least_frequent_then_least_recent():
    cache = LFUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.get("a")
    cache.put("c", 3)  # b (1 use) goes, a (3 uses) stays
    assert cache.get("b") is None and cache.get("a") == 1
    cache.put("d", 4)  # c (1 use) goes
    assert cache.get("c") is None and cache.get("d") == 4


def test_perfect_lfu_does_not_admit_a_less_popular_item():
    cache = PerfectLFUCache(1)
    for _ in range(3):
        if cache.get("hot") is None:
            cache.put("hot", 1)
    cache.get("cold")
    cache.put("cold", 2)  # asked for once, "hot" three times: not admitted
    assert "hot" in cache and "cold" not in cache


def test_ttl_cache_expires_on_the_injected_clock():
    cache = TTLCache(10, ttl=5)
    cache.put("a", 1, now=100)
    assert cache.get("a", now=104.9) == 1  # a read does not extend its life
    assert cache.get("a", now=105) is None
    cache.put("a", 2, now=105)
    assert cache.get("a", now=109) == 2


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda: LRUCache(0), "capacity must be a whole number of at least 1, got 0"),
        (lambda: LRUCache(2.5), "capacity"),
        (lambda: LRUCache(2, ttl=-1), "ttl must be a number greater than 0, got -1"),
        (lambda: TTLCache(2, None), "ttl"),
        (lambda: make_cache("MRU", 3), "policy must be one of"),
        (lambda: replay(LRUCache(2), [1, 2], warmup=2), "warmup must be below"),
    ],
)
def test_bad_arguments_name_the_parameter(make, problem):
    with pytest.raises(ValueError, match=problem):
        make()


# --- simulation against theory --------------------------------------------------------------


def test_zipf_trace_is_seeded_and_follows_the_popularity():
    trace = zipf_trace(100, 0.8, 200_000, seed=5)
    assert np.array_equal(trace, zipf_trace(100, 0.8, 200_000, seed=5))
    observed = np.bincount(trace, minlength=100) / trace.size
    assert np.allclose(observed, zipf_popularity(100, 0.8), atol=0.003)


@pytest.mark.parametrize("alpha", [0.6, 0.8, 1.0])
def test_lru_hit_ratio_within_2_points_of_che(alpha):
    curves = hit_ratio_curves(
        n_items=5_000, alpha=alpha, sizes=(25, 100, 400, 1500), n_requests=60_000,
        policies=["LRU", "FIFO"], seed=7,
    )  # fmt: skip
    for policy in ("LRU", "FIFO"):
        assert curves[policy].largest_gap < 0.02, (policy, curves[policy])


def test_lfu_variants_against_the_top_c_optimum():
    curves = hit_ratio_curves(
        n_items=2_000, alpha=0.8, sizes=(20, 100), n_requests=60_000,
        policies=["LRU", "LFU", "perfect LFU"], seed=3,
    )  # fmt: skip
    perfect, lfu, lru = curves["perfect LFU"], curves["LFU"], curves["LRU"]
    assert perfect.largest_gap < 0.02  # counting every request converges to the top C
    for i in range(2):  # nothing beats the optimum; in-cache LFU falls short of it
        assert lru.simulated[i] < perfect.predicted[i]
        assert lfu.simulated[i] < perfect.simulated[i]


def test_closed_forms_order_and_limits():
    p = zipf_popularity(1000, 0.8)
    for size in (10, 100, 500):
        fifo, lru, best = (
            fifo_hit_ratio(p, size),
            che_hit_ratio(p, size),
            lfu_optimum_hit_ratio(p, size),
        )
        assert fifo < lru < best  # FIFO <= LRU <= the optimum under IRM
    assert fifo_hit_ratio(p, 0) == 0 and fifo_hit_ratio(p, 1000) == 1
    assert lfu_optimum_hit_ratio(p, 1000) == pytest.approx(1)


@pytest.mark.parametrize("policy, exact", [("LRU", che_hit_ratio), ("FIFO", fifo_hit_ratio)])
def test_parametric_theory_curve_matches_the_root_finding_form(policy, exact):
    p = zipf_popularity(2000, 0.9)
    sizes, hits = theory_curve(policy, p, 20, 1000)
    assert sizes.min() >= 19.9 and sizes.max() <= 1001 and len(sizes) >= 15
    for size in (25, 100, 700):
        assert np.interp(size, sizes, hits) == pytest.approx(exact(p, size), abs=0.003)


# --- cache-aside, stampede ------------------------------------------------------------------


def test_cache_aside_loads_each_key_once_while_fresh():
    client = connect()
    client.flushdb()
    store = SlowStore(n_items=10, delay=0)
    aside = CacheAside(client, store, ttl=60)
    for key in ["item:1", "item:2", "item:1", "item:1", "item:99"]:
        aside.get(key)
    assert store.loads == 3  # item:1 once, item:2 once, the missing item:99 once
    assert (aside.hits, aside.misses) == (2, 3)
    assert aside.get("item:2") == "value of item 2"


@pytest.mark.parametrize("protection, loads", [("none", 12), ("lock", 1), ("single-flight", 1)])
def test_stampede_and_its_fixes(protection, loads):
    result = stampede(connect(), clients=12, protection=protection, delay=0.1)
    assert result.db_loads == loads
    assert result.answers_ok


def test_stampede_lock_works_on_real_redis(redis_client):
    assert stampede(redis_client, clients=8, protection="lock", delay=0.1).db_loads == 1


# --- CDN, explorers -------------------------------------------------------------------------


def test_cdn_offload_matches_che_and_latency_follows():
    result = cdn(edge_size=200, alpha=0.8, n_items=5_000, regions=2, requests_per_region=30_000)
    assert result.offload == pytest.approx(result.predicted_offload, abs=0.02)
    assert result.mean_latency_ms == pytest.approx(20 + (1 - result.offload) * 150)
    skewed = cdn(edge_size=200, alpha=1.1, n_items=5_000, regions=1, requests_per_region=10_000)
    assert skewed.offload > result.offload + 0.2  # more skew, more offload


@pytest.mark.parametrize("name", ["cache-hit-ratio", "cache-cdn"])
def test_explorers_render_at_every_grid_point(name):
    explorer = REGISTRY[name]
    for params in explorer.grid(points=2):
        figure = explorer.render(**params)
        assert len(figure.data) >= 4


def test_hit_ratio_explorer_simulation_is_near_theory():
    view = REGISTRY["cache-hit-ratio"].compute(alpha=0.8, policy="LRU")
    assert view.simulated.largest_gap < 0.04  # a short trace: a few points of noise
