"""Caches: eviction policies, hit ratios against theory, cache-aside, stampedes and a CDN.

Four in-process caches share one interface, ``get(key, now) -> value or None`` and
``put(key, value, now)``, and count their own ``hits`` and ``misses``:

- :class:`LRUCache` evicts the least recently used entry (an ``OrderedDict``: O(1));
  with ``ttl`` set, an entry also expires ``ttl`` seconds after it was written;
- :class:`TTLCache` is an LRU cache whose entries must expire (``ttl`` required);
- :class:`FIFOCache` evicts the oldest insertion, whatever was read since;
- :class:`LFUCache` evicts the least frequently used entry (frequency buckets: O(1);
  ties go to the least recently used of the least frequent).

Time is an argument (``now``), never read from a clock, and traces take a ``seed``, so a
simulation, a test and a notebook all see the same numbers.

Theory the simulations are held to (:func:`sysdesign.theory.che_hit_ratio` for LRU):

- :func:`lfu_optimum_hit_ratio`: under the independent reference model (IRM: every
  request picks item i with probability p_i, independently), no policy beats keeping the
  C most popular items, so the hit ratio is the sum of the C largest p_i. E. G. Coffman
  and P. J. Denning, *Operating Systems Theory* (1973), ch. 6 (the A0 policy); a
  frequency-counting LFU converges to it on a long IRM trace.
- :func:`fifo_hit_ratio`: the approximation for FIFO (and RANDOM, which has the same hit
  ratio under IRM, E. Gelenbe, "A unified approach to the evaluation of a class of
  replacement algorithms", IEEE Trans. Computers 22(6), 1973): item i is in the cache
  with probability ``p_i T / (1 + p_i T)``, with T chosen so that these sum to C.
  V. Martina, M. Garetto, E. Leonardi, "A unified approach to the performance analysis
  of caching systems", INFOCOM 2014.

Beyond one process: :class:`CacheAside` puts Redis (``sysdesign.store.connect()``) in
front of :class:`SlowStore` (SQLite with an artificial delay) and counts database loads;
:func:`stampede` lets N threads ask for a hot key just after it expired, without
protection (N loads), with a Redis lock (``SET NX PX``) or with in-process request
coalescing ("single flight"), 1 load each. :func:`cdn` models edge caches in front of an
origin: origin offload and mean latency as edge size and popularity skew change.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sysdesign.theory import che_hit_ratio, zipf_popularity

POLICIES = ("LRU", "FIFO", "LFU", "perfect LFU")


# --- argument checks -------------------------------------------------------------------


def _whole(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return int(value)


def _positive(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number greater than 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


# --- the caches --------------------------------------------------------------------------


class _Counted:
    hits: int
    misses: int

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class LRUCache(_Counted):
    """Least recently used eviction, O(1) per operation; optional expiry after ``ttl`` s.

    An entry written at time t is fresh while ``now < t + ttl``; reading it does not
    extend its life (the TTL bounds how stale a value can be), writing it again does.
    Expired entries are dropped when they are read (lazily), so ``len`` may count some.
    """

    def __init__(self, capacity: int, ttl: float | None = None):
        self.capacity = _whole("capacity", capacity)
        self.ttl = _positive("ttl", ttl, allow_none=True)
        self.entries: OrderedDict[Hashable, tuple[Any, float]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable, now: float = 0.0) -> Any:
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        value, expires_at = entry
        if now >= expires_at:
            del self.entries[key]
            self.misses += 1
            return None
        self.entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: Hashable, value: Any, now: float = 0.0) -> None:
        entries = self.entries
        if key in entries:
            entries.move_to_end(key)
        entries[key] = (value, math.inf if self.ttl is None else now + self.ttl)
        if len(entries) > self.capacity:
            entries.popitem(last=False)  # the least recently used

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self.entries


class TTLCache(LRUCache):
    """An LRU cache whose entries expire ``ttl`` seconds after they are written."""

    def __init__(self, capacity: int, ttl: float):
        if ttl is None:
            raise ValueError("ttl must be a number greater than 0, got None")
        super().__init__(capacity, ttl)


class FIFOCache(_Counted):
    """First in, first out: evicts the oldest insertion; a hit changes nothing."""

    def __init__(self, capacity: int):
        self.capacity = _whole("capacity", capacity)
        self.entries: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable, now: float = 0.0) -> Any:
        if key in self.entries:
            self.hits += 1
            return self.entries[key]
        self.misses += 1
        return None

    def put(self, key: Hashable, value: Any, now: float = 0.0) -> None:
        if key not in self.entries and len(self.entries) >= self.capacity:
            self.entries.popitem(last=False)  # the oldest insertion
        self.entries[key] = value

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self.entries


class LFUCache(_Counted):
    """Least frequently used eviction in O(1): one insertion-ordered bucket per count.

    Counts are of requests while the item is cached (an evicted item starts again at 1);
    among the least frequent, the least recently used goes first.
    """

    def __init__(self, capacity: int):
        self.capacity = _whole("capacity", capacity)
        self.values: dict[Hashable, Any] = {}
        self.counts: dict[Hashable, int] = {}
        self.buckets: defaultdict[int, OrderedDict[Hashable, None]] = defaultdict(OrderedDict)
        self.min_count = 0
        self.hits = self.misses = 0

    def _touch(self, key: Hashable) -> None:
        count = self.counts[key]
        bucket = self.buckets[count]
        del bucket[key]
        if not bucket:
            del self.buckets[count]
            if self.min_count == count:
                self.min_count = count + 1
        self.counts[key] = count + 1
        self.buckets[count + 1][key] = None

    def get(self, key: Hashable, now: float = 0.0) -> Any:
        if key not in self.values:
            self.misses += 1
            return None
        self._touch(key)
        self.hits += 1
        return self.values[key]

    def put(self, key: Hashable, value: Any, now: float = 0.0) -> None:
        if key in self.values:
            self.values[key] = value
            self._touch(key)
            return
        if len(self.values) >= self.capacity:
            bucket = self.buckets[self.min_count]
            victim, _ = bucket.popitem(last=False)
            if not bucket:
                del self.buckets[self.min_count]
            del self.values[victim], self.counts[victim]
        self.values[key] = value
        self.counts[key] = 1
        self.buckets[1][key] = None
        self.min_count = 1

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, key: Hashable) -> bool:
        return key in self.values


class PerfectLFUCache(LFUCache):
    """LFU that counts every request, cached or not ("perfect" LFU), and admits a new
    item only if it has been asked for more often than the least frequent cached one.
    On a long IRM trace it ends up holding the C most popular items: the optimum.
    Finding the next smallest count after an eviction takes O(distinct counts)."""

    def __init__(self, capacity: int):
        super().__init__(capacity)
        self.seen: defaultdict[Hashable, int] = defaultdict(int)

    def get(self, key: Hashable, now: float = 0.0) -> Any:
        self.seen[key] += 1
        return super().get(key, now)

    def put(self, key: Hashable, value: Any, now: float = 0.0) -> None:
        if key in self.values:
            self.values[key] = value
            return
        count = max(self.seen[key], 1)
        if len(self.values) >= self.capacity:
            if count <= self.min_count:
                return  # not more popular than anything cached: do not admit
            bucket = self.buckets[self.min_count]
            victim, _ = bucket.popitem(last=False)
            if not bucket:
                del self.buckets[self.min_count]
            del self.values[victim], self.counts[victim]
        self.values[key] = value
        self.counts[key] = count
        self.buckets[count][key] = None
        self.min_count = min(self.buckets)


def make_cache(policy: str, capacity: int) -> LRUCache | FIFOCache | LFUCache | PerfectLFUCache:
    """A cache of ``capacity`` entries with eviction ``policy``: "LRU", "FIFO", "LFU" or
    "perfect LFU"."""
    classes = {"LRU": LRUCache, "FIFO": FIFOCache, "LFU": LFUCache, "perfect LFU": PerfectLFUCache}
    if policy not in classes:
        raise ValueError(f"policy must be one of {list(classes)}, got {policy!r}")
    return classes[policy](capacity)


# --- traces and hit ratios ------------------------------------------------------------------


def zipf_trace(n_items: int, alpha: float, n_requests: int, seed: int) -> np.ndarray:
    """``n_requests`` item ids (0 = most popular) drawn independently from Zipf(``alpha``)
    over ``n_items`` items: the independent reference model. Seeded."""
    p = zipf_popularity(n_items, alpha)
    n = _whole("n_requests", n_requests)
    rng = np.random.default_rng(seed)
    return np.searchsorted(np.cumsum(p), rng.random(n) * p.sum(), side="right").clip(0, n_items - 1)


def replay(cache, trace: Sequence[Hashable], warmup: int = 0) -> float:
    """Read every key of ``trace`` through ``cache`` (a miss writes the key: cache-aside);
    return the hit ratio over the requests after the first ``warmup``.

    The clock is the request's position in the trace (``now = 0, 1, 2, ...``), so a TTL
    is measured in requests."""
    _whole("warmup", warmup, minimum=0)
    if warmup >= len(trace):
        raise ValueError(f"warmup must be below the trace length {len(trace)}, got {warmup}")
    get, put = cache.get, cache.put
    keys = trace.tolist() if isinstance(trace, np.ndarray) else list(trace)
    hits = 0
    for now, key in enumerate(keys):
        if get(key, now) is None:
            put(key, True, now)
        elif now >= warmup:
            hits += 1
    return hits / (len(keys) - warmup)


def lfu_optimum_hit_ratio(popularity: Sequence[float] | np.ndarray, cache_size: int) -> float:
    """Perfect LFU under IRM: the sum of the ``cache_size`` largest probabilities (the
    optimum of every policy that cannot see the future; Coffman and Denning 1973)."""
    p = np.sort(np.asarray(popularity, dtype=float))[::-1]
    size = _whole("cache_size", cache_size, minimum=0)
    return float(p[:size].sum())


def fifo_hit_ratio(popularity: Sequence[float] | np.ndarray, cache_size: int) -> float:
    """FIFO (= RANDOM) hit ratio under IRM: item i is cached with probability
    ``p_i T / (1 + p_i T)`` where ``sum_i p_i T / (1 + p_i T) = cache_size``
    (Martina, Garetto and Leonardi, INFOCOM 2014)."""
    p = np.asarray(popularity, dtype=float)
    size = _whole("cache_size", cache_size, minimum=0)
    if size == 0:
        return 0.0
    if size >= np.count_nonzero(p):
        return 1.0
    lo, hi = 0.0, 1.0
    while np.sum(p * hi / (1 + p * hi)) < size:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        if np.sum(p * mid / (1 + p * mid)) < size:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-10 * hi:
            break
    t = (lo + hi) / 2
    return float(np.sum(p * p * t / (1 + p * t)))


def theory_curve(
    policy: str,
    popularity: Sequence[float] | np.ndarray,
    min_size: float,
    max_size: float,
    points: int = 40,
) -> tuple[np.ndarray, np.ndarray]:
    """(cache sizes, hit ratios) of a closed form between ``min_size`` and ``max_size``,
    fast: Che's and the FIFO approximation are evaluated parametrically in T (a grid of
    characteristic times gives sizes and hit ratios at once, no root finding), top-C by
    a cumulative sum. Used for the explorers' lines; the tests hold it to
    :func:`sysdesign.theory.che_hit_ratio`."""
    p = np.asarray(popularity, dtype=float)
    if policy in ("LFU", "perfect LFU"):
        sizes = np.unique(np.geomspace(min_size, max_size, points).round().astype(int))
        return sizes, np.cumsum(np.sort(p)[::-1])[sizes - 1]
    if policy not in ("LRU", "FIFO"):
        raise ValueError(f"policy must be one of {list(POLICIES)}, got {policy!r}")
    t = np.geomspace(min_size / 2, max_size / p.min(), 3 * points)[:, None]
    occupancy = -np.expm1(-p * t) if policy == "LRU" else p * t / (1 + p * t)
    sizes = occupancy.sum(axis=1)
    hits = occupancy @ p
    keep = (sizes >= min_size * 0.999) & (sizes <= max_size * 1.001)
    sizes, hits = sizes[keep], hits[keep]
    step = max(1, len(sizes) // points)
    return sizes[::step], hits[::step]


THEORY: dict[str, Callable[[np.ndarray, int], float]] = {
    "LRU": che_hit_ratio,
    "FIFO": fifo_hit_ratio,
    "LFU": lfu_optimum_hit_ratio,
    "perfect LFU": lfu_optimum_hit_ratio,
}
THEORY_NAMES = {
    "LRU": "Che's approximation",
    "FIFO": "FIFO approximation (Martina 2014)",
    "LFU": "top-C popularity (IRM optimum)",
    "perfect LFU": "top-C popularity (IRM optimum)",
}


@dataclass
class HitRatioCurve:
    """Simulated and predicted hit ratios of one policy at several cache sizes."""

    policy: str
    sizes: list[int]
    simulated: list[float]
    predicted: list[float]

    @property
    def largest_gap(self) -> float:
        """The largest |simulated - predicted|, as a fraction (0.01 = 1 point)."""
        return max(abs(s - p) for s, p in zip(self.simulated, self.predicted, strict=True))


def hit_ratio_curves(
    *,
    n_items: int = 10_000,
    alpha: float = 0.8,
    sizes: Sequence[int] = (10, 30, 100, 300, 1000, 3000),
    n_requests: int = 100_000,
    warmup: int | None = None,
    policies: Sequence[str] = POLICIES,
    seed: int = 1,
) -> dict[str, HitRatioCurve]:
    """Replay one seeded Zipf trace through each policy at each size, next to theory.

    ``warmup`` requests (default: a fifth of the trace) fill the cache before counting.
    """
    trace = zipf_trace(n_items, alpha, n_requests, seed)
    warmup = n_requests // 5 if warmup is None else warmup
    p = zipf_popularity(n_items, alpha)
    curves = {}
    for policy in policies:
        simulated = [replay(make_cache(policy, size), trace, warmup) for size in sizes]
        predicted = [THEORY[policy](p, size) for size in sizes]
        curves[policy] = HitRatioCurve(policy, list(sizes), simulated, predicted)
    return curves


# --- cache-aside in front of a slow store -------------------------------------------------


class SlowStore:
    """A SQLite table ``items(key, value)`` whose every read takes ``delay`` seconds more
    (a stand-in for a database under load). ``loads`` counts the reads; thread-safe, and
    concurrent reads overlap (the delay is outside the connection's lock)."""

    def __init__(self, n_items: int = 1000, delay: float = 0.05):
        _whole("n_items", n_items)
        self.delay = _positive("delay", delay) if delay else 0.0
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute("CREATE TABLE items (key TEXT PRIMARY KEY, value TEXT)")
        self.db.executemany(
            "INSERT INTO items VALUES (?, ?)",
            ((f"item:{i}", f"value of item {i}") for i in range(n_items)),
        )
        self.lock = threading.Lock()
        self.loads = 0

    def load(self, key: str) -> str | None:
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.loads += 1
            row = self.db.execute("SELECT value FROM items WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]


class CacheAside:
    """Read through Redis, fall back to the store on a miss and write the value back with
    a TTL (``SET key value PX ttl_ms``). ``hits`` and ``misses`` count cache lookups.

    ``protection`` decides what concurrent misses on one key do:
    - ``"none"``: each loads from the store (a stampede when a hot key expires);
    - ``"lock"``: one caller wins ``SET lock:<key> 1 NX PX lock_ms`` and loads; the others
      poll the cache until the value appears (a lock across every app server);
    - ``"single-flight"``: callers in this process share one load (request coalescing).
    """

    PROTECTIONS = ("none", "lock", "single-flight")

    def __init__(
        self,
        client,
        store: SlowStore,
        *,
        ttl: float = 60.0,
        protection: str = "none",
        lock_ttl: float = 5.0,
        poll: float = 0.005,
    ):
        if protection not in self.PROTECTIONS:
            raise ValueError(
                f"protection must be one of {list(self.PROTECTIONS)}, got {protection!r}"
            )
        self.client, self.store, self.protection = client, store, protection
        self.ttl_ms = round(_positive("ttl", ttl) * 1000)
        self.lock_ms = round(_positive("lock_ttl", lock_ttl) * 1000)
        self.poll = _positive("poll", poll)
        self.hits = self.misses = 0
        self._counter = threading.Lock()
        self._flights: dict[str, threading.Event] = {}
        self._flights_lock = threading.Lock()

    def _count(self, hit: bool) -> None:
        with self._counter:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def _fill(self, key: str) -> str | None:
        value = self.store.load(key)
        if value is not None:
            self.client.set(key, value, px=self.ttl_ms)
        return value

    def get(self, key: str) -> str | None:
        value = self.client.get(key)
        self._count(value is not None)
        if value is not None:
            return value
        if self.protection == "lock":
            return self._get_with_lock(key)
        if self.protection == "single-flight":
            return self._get_single_flight(key)
        return self._fill(key)

    def _get_with_lock(self, key: str) -> str | None:
        lock = f"lock:{key}"
        while True:
            if self.client.set(lock, "1", nx=True, px=self.lock_ms):
                try:
                    value = self.client.get(key)  # filled while we were getting the lock?
                    return value if value is not None else self._fill(key)
                finally:
                    self.client.delete(lock)
            time.sleep(self.poll)
            value = self.client.get(key)
            if value is not None:
                return value

    def _get_single_flight(self, key: str) -> str | None:
        with self._flights_lock:
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = threading.Event()
        if not leader:
            flight.wait()
            return self.client.get(key)
        try:
            value = self.client.get(key)  # filled by a flight that just landed?
            return value if value is not None else self._fill(key)
        finally:
            with self._flights_lock:
                del self._flights[key]
            flight.set()


@dataclass
class StampedeResult:
    protection: str
    clients: int
    db_loads: int
    answers_ok: bool
    seconds: float


def stampede(
    client,
    *,
    clients: int = 20,
    protection: str = "none",
    delay: float = 0.1,
    ttl: float = 0.05,
    key: str = "item:7",
) -> StampedeResult:
    """A hot key expires and ``clients`` threads ask for it at the same instant.

    The key is cached with a ``ttl`` of 50 ms; once it has expired, a barrier releases
    every thread at once into :meth:`CacheAside.get`. Returns how many store loads that
    took (``none``: one per thread; ``lock`` / ``single-flight``: 1).
    """
    _whole("clients", clients)
    store = SlowStore(n_items=100, delay=delay)
    aside = CacheAside(client, store, ttl=ttl, protection=protection)
    client.delete(key, f"lock:{key}")
    expected = aside.get(key)  # warm the cache: one load
    time.sleep(ttl + 0.02)  # ... and let the hot key expire
    store.loads = 0
    barrier = threading.Barrier(clients)
    answers: list[str | None] = [None] * clients

    def worker(i: int) -> None:
        barrier.wait()
        answers[i] = aside.get(key)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    return StampedeResult(
        protection, clients, store.loads, all(a == expected for a in answers), seconds
    )


# --- a CDN: edge caches in front of an origin ------------------------------------------------


@dataclass
class CDNResult:
    """Origin offload (fraction of requests served by an edge) and mean latency."""

    edge_size: int
    alpha: float
    regions: int
    offload: float
    mean_latency_ms: float
    per_region_offload: list[float] = field(default_factory=list)
    predicted_offload: float = 0.0
    predicted_latency_ms: float = 0.0


def cdn(
    *,
    edge_size: int = 100,
    alpha: float = 0.8,
    n_items: int = 10_000,
    regions: int = 3,
    requests_per_region: int = 20_000,
    edge_rtt_ms: float = 20.0,
    origin_rtt_ms: float = 150.0,
    seed: int = 1,
) -> CDNResult:
    """Each region's users hit their own LRU edge cache of ``edge_size`` objects; a miss
    goes on to the origin. A hit costs ``edge_rtt_ms``, a miss ``edge_rtt_ms +
    origin_rtt_ms``. Every region draws its own seeded Zipf(``alpha``) trace over the same
    catalog; the first quarter of each trace warms its edge. Che's approximation gives
    the prediction (every region sees the same popularity)."""
    _whole("regions", regions)
    edge_rtt = _positive("edge_rtt_ms", edge_rtt_ms)
    origin_rtt = _positive("origin_rtt_ms", origin_rtt_ms)
    per_region = []
    for region in range(regions):
        trace = zipf_trace(n_items, alpha, requests_per_region, seed * 1000 + region)
        per_region.append(replay(LRUCache(edge_size), trace, requests_per_region // 4))
    offload = float(np.mean(per_region))
    predicted = che_hit_ratio(zipf_popularity(n_items, alpha), edge_size)

    return CDNResult(
        edge_size, alpha, regions, offload, cdn_latency_ms(offload, edge_rtt, origin_rtt),
        per_region, predicted, cdn_latency_ms(predicted, edge_rtt, origin_rtt),
    )  # fmt: skip


def cdn_latency_ms(hit_ratio: float, edge_rtt_ms: float, origin_rtt_ms: float) -> float:
    """Mean latency when a fraction ``hit_ratio`` is served by the edge."""
    return edge_rtt_ms + (1 - hit_ratio) * origin_rtt_ms
