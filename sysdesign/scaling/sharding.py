"""Sharding: which node holds a key, and what happens to the keys when nodes come and go.

Four ways to map a key to one of ``n`` nodes, all on the same stable 64-bit hash
(:func:`hash_key`, BLAKE2b; never Python's ``hash()``, which is salted per process):

- :class:`ModuloSharding`: ``nodes[hash % n]``; balanced, but changing ``n`` moves
  about ``n/(n+1)`` of the keys;
- :class:`ConsistentHashRing`: every node owns ``vnodes`` points on a ring of 2**64
  positions; a key belongs to the first point clockwise from its hash (``bisect``);
  adding a node moves about ``1/(n+1)`` of the keys, all of them to the new node;
- :class:`RendezvousHashing` (highest random weight): a key goes to the node with the
  largest ``weight(node, key)``; no ring, ``O(n)`` per lookup, same minimal movement;
- :class:`JumpHash`: jump consistent hash (Lamping and Veach 2014), no memory, perfect
  balance, but nodes can only be added or removed at the end of the list.

Each scheme has ``node_for(key)`` (one key, plain Python) and ``assign(hashes)`` (many
precomputed key hashes at once, numpy; the experiments and explorers use it). The
experiments below measure what the closed forms predict: :func:`moved_fraction_theory`
and :func:`ring_load_cv`.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

MASK64 = (1 << 64) - 1


# --- the stable hash -----------------------------------------------------------------


def hash_key(key: str | bytes | int) -> int:
    """A stable 64-bit hash: the first 8 bytes of BLAKE2b, as an unsigned int.

    The same key gives the same number in every process, on every machine, in every
    Python version, which is what lets every client route a key to the same node.
    (Python's built-in ``hash()`` of a str is salted per process: PYTHONHASHSEED.)
    """
    if isinstance(key, int):
        key = str(key)
    if isinstance(key, str):
        key = key.encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def hash_keys(keys: Iterable[str | bytes | int]) -> np.ndarray:
    """:func:`hash_key` of every key, as a ``uint64`` array (hash a key set once, reuse it)."""
    return np.fromiter((hash_key(k) for k in keys), dtype=np.uint64)


def make_keys(count: int, prefix: str = "user:") -> list[str]:
    """``count`` key names, ``user:0``, ``user:1``, ...: a deterministic key set."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count!r}")
    return [f"{prefix}{i}" for i in range(count)]


@lru_cache(maxsize=8)
def key_hashes(count: int, prefix: str = "user:") -> np.ndarray:
    """The hashes of ``make_keys(count, prefix)``, computed once per process (read-only)."""
    hashes = hash_keys(make_keys(count, prefix))
    hashes.flags.writeable = False
    return hashes


def splitmix64(z: int) -> int:
    """The SplitMix64 finalizer: scrambles a 64-bit int (Steele, Lea and Flood, "Fast
    splittable pseudorandom number generators", OOPSLA 2014)."""
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _splitmix64_array(z: np.ndarray) -> np.ndarray:
    """:func:`splitmix64` over a ``uint64`` array (numpy arithmetic wraps modulo 2**64)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _check_nodes(nodes: Sequence[str]) -> list[str]:
    nodes = list(nodes)
    if len(set(nodes)) != len(nodes):
        raise ValueError(f"nodes must be distinct, got {nodes!r}")
    return nodes


def _check_count(name: str, value: int, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    return int(value)


class _Scheme:
    """What every scheme shares: a list of node names, and lookups that fail clearly."""

    nodes: list[str]

    def _need_nodes(self) -> None:
        if not self.nodes:
            raise LookupError(f"{type(self).__name__} has no nodes: add a node first")

    def _unknown(self, node: str) -> ValueError:
        return ValueError(f"node {node!r} is not one of the nodes {self.nodes!r}")

    def assign(self, hashes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def node_for(self, key: str | bytes | int) -> str:
        """The node that holds ``key``."""
        self._need_nodes()
        index = self.assign(np.array([hash_key(key)], dtype=np.uint64))[0]
        return self.nodes[int(index)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.nodes)} nodes)"


# --- modulo ----------------------------------------------------------------------------


class ModuloSharding(_Scheme):
    """``nodes[hash_key(key) % len(nodes)]``: simple and balanced, until ``n`` changes."""

    def __init__(self, nodes: Sequence[str]):
        self.nodes = _check_nodes(nodes)

    def node_for(self, key: str | bytes | int) -> str:
        self._need_nodes()
        return self.nodes[hash_key(key) % len(self.nodes)]

    def assign(self, hashes: np.ndarray) -> np.ndarray:
        """Node index (into ``nodes``) of every key hash."""
        self._need_nodes()
        return (hashes % np.uint64(len(self.nodes))).astype(np.int64)

    def add_node(self, node: str) -> None:
        self.nodes = _check_nodes([*self.nodes, node])

    def remove_node(self, node: str) -> None:
        if node not in self.nodes:
            raise self._unknown(node)
        self.nodes.remove(node)


# --- the consistent hash ring --------------------------------------------------------------


_VNODE_CACHE: dict[str, np.ndarray] = {}  # node -> positions of its first vnodes
MAX_CACHED_NODES = 10_000


def vnode_positions(node: str, vnodes: int) -> np.ndarray:
    """Ring positions of ``node``'s virtual nodes: ``hash_key(f"{node}#{i}")``, i < vnodes.

    Cached per node (read-only arrays), and extended when more virtual nodes are asked
    for: the first ``k`` positions do not depend on how many come after them."""
    vnodes = _check_count("vnodes", vnodes, 1)
    cached = _VNODE_CACHE.get(node)
    if cached is None or len(cached) < vnodes:
        start = 0 if cached is None else len(cached)
        extra = np.fromiter(
            (hash_key(f"{node}#{i}") for i in range(start, vnodes)), dtype=np.uint64
        )
        cached = extra if cached is None else np.concatenate([cached, extra])
        cached.flags.writeable = False
        if len(_VNODE_CACHE) < MAX_CACHED_NODES:
            _VNODE_CACHE[node] = cached
    return cached[:vnodes]


class ConsistentHashRing(_Scheme):
    """A consistent hash ring with virtual nodes.

    Node ``x`` owns the ring positions ``hash_key(f"{x}#{i}")`` for ``i < vnodes``; a key
    belongs to the owner of the first position at or after ``hash_key(key)``, wrapping
    around past 2**64 - 1. The positions are kept sorted, so a lookup is one
    ``bisect`` (``O(log(n * vnodes))``); adding or removing a node touches only its own
    positions, and only the keys in front of them move.
    """

    def __init__(self, nodes: Sequence[str] = (), vnodes: int = 100):
        self.vnodes = _check_count("vnodes", vnodes, 1)
        self.nodes: list[str] = []
        self._positions: list[int] = []  # sorted ring positions
        self._owners: list[str] = []  # owner of each position, same order
        for node in _check_nodes(nodes):
            self.add_node(node)

    def add_node(self, node: str) -> None:
        """Put ``node``'s ``vnodes`` points on the ring."""
        if node in self.nodes:
            raise ValueError(f"node {node!r} is already on the ring")
        self.nodes.append(node)
        for i in range(self.vnodes):
            position = hash_key(f"{node}#{i}")
            at = bisect.bisect_left(self._positions, position)
            self._positions.insert(at, position)
            self._owners.insert(at, node)

    def remove_node(self, node: str) -> None:
        """Take ``node``'s points off the ring; its keys fall to the next points clockwise."""
        if node not in self.nodes:
            raise self._unknown(node)
        self.nodes.remove(node)
        kept = [(p, o) for p, o in zip(self._positions, self._owners, strict=True) if o != node]
        self._positions = [p for p, _ in kept]
        self._owners = [o for _, o in kept]

    def node_for(self, key: str | bytes | int) -> str:
        """The owner of the first ring position at or after ``hash_key(key)`` (wrapping)."""
        self._need_nodes()
        at = bisect.bisect_left(self._positions, hash_key(key))
        return self._owners[at % len(self._positions)]

    def assign(self, hashes: np.ndarray) -> np.ndarray:
        """Node index (into ``nodes``) of every key hash: ``np.searchsorted`` on the ring."""
        self._need_nodes()
        positions = np.array(self._positions, dtype=np.uint64)
        index = {node: i for i, node in enumerate(self.nodes)}
        owners = np.array([index[o] for o in self._owners], dtype=np.int64)
        at = np.searchsorted(positions, hashes, side="left") % len(positions)
        return owners[at]


def ring_assign(hashes: np.ndarray, nodes: Sequence[str], vnodes: int) -> np.ndarray:
    """What ``ConsistentHashRing(nodes, vnodes).assign(hashes)`` returns, built from
    cached vnode positions (fast: the explorers call it on every slider move)."""
    nodes = _check_nodes(nodes)
    if not nodes:
        raise LookupError("the ring has no nodes")
    positions = np.concatenate([vnode_positions(node, vnodes) for node in nodes])
    owners = np.repeat(np.arange(len(nodes)), vnodes)
    order = np.argsort(positions, kind="stable")
    positions, owners = positions[order], owners[order]
    return owners[np.searchsorted(positions, hashes, side="left") % len(positions)]


# --- rendezvous (highest random weight) -------------------------------------------------


class RendezvousHashing(_Scheme):
    """Highest random weight: ``key`` goes to the node with the largest
    ``splitmix64(hash_key(key) ^ hash_key(node))`` (Thaler and Ravishankar 1998)."""

    def __init__(self, nodes: Sequence[str]):
        self.nodes = _check_nodes(nodes)

    def node_for(self, key: str | bytes | int) -> str:
        self._need_nodes()
        h = hash_key(key)
        return max(self.nodes, key=lambda node: splitmix64(h ^ hash_key(node)))

    def weights(self, hashes: np.ndarray) -> np.ndarray:
        """The weight of every (key hash, node) pair: a ``len(hashes) x n`` array."""
        seeds = np.array([hash_key(node) for node in self.nodes], dtype=np.uint64)
        return _splitmix64_array(hashes[:, None] ^ seeds[None, :])

    def assign(self, hashes: np.ndarray) -> np.ndarray:
        """Node index of every key hash: one weight per (key, node), then argmax."""
        self._need_nodes()
        return np.argmax(self.weights(hashes), axis=1)

    def add_node(self, node: str) -> None:
        self.nodes = _check_nodes([*self.nodes, node])

    def remove_node(self, node: str) -> None:
        if node not in self.nodes:
            raise self._unknown(node)
        self.nodes.remove(node)


# --- jump consistent hash -----------------------------------------------------------------

JUMP_LCG = 2862933555777941757  # the 64-bit linear congruential generator of the paper


def jump_consistent_hash(key: int, num_buckets: int) -> int:
    """Jump consistent hash (Lamping and Veach, "A fast, minimal memory, consistent hash
    algorithm", 2014, arXiv 1406.2294), line for line: the bucket in ``[0, num_buckets)``
    of a 64-bit ``key``. Going from n to n + 1 buckets moves a key only to bucket n."""
    num_buckets = _check_count("num_buckets", num_buckets, 1)
    key &= MASK64
    b, j = -1, 0
    while j < num_buckets:
        b = j
        key = (key * JUMP_LCG + 1) & MASK64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def jump_consistent_hash_array(keys: np.ndarray, num_buckets: int) -> np.ndarray:
    """:func:`jump_consistent_hash` of every ``uint64`` key at once (about ln(n) rounds)."""
    num_buckets = _check_count("num_buckets", num_buckets, 1)
    key = np.array(keys, dtype=np.uint64)
    b = np.full(key.shape, -1, dtype=np.int64)
    j = np.zeros(key.shape, dtype=np.int64)
    active = np.arange(key.size)
    while active.size:
        b[active] = j[active]
        k = key[active] * np.uint64(JUMP_LCG) + np.uint64(1)
        key[active] = k
        jumped = (b[active] + 1) * (float(1 << 31) / ((k >> np.uint64(33)) + 1).astype(float))
        j[active] = jumped.astype(np.int64)
        active = active[j[active] < num_buckets]
    return b


class JumpHash(_Scheme):
    """Jump consistent hash over a list of nodes: bucket i is ``nodes[i]``. No state but the
    list; nodes can be added or removed only at the end (bucket numbers must not shift)."""

    def __init__(self, nodes: Sequence[str]):
        self.nodes = _check_nodes(nodes)

    def node_for(self, key: str | bytes | int) -> str:
        self._need_nodes()
        return self.nodes[jump_consistent_hash(hash_key(key), len(self.nodes))]

    def assign(self, hashes: np.ndarray) -> np.ndarray:
        self._need_nodes()
        return jump_consistent_hash_array(hashes, len(self.nodes))

    def add_node(self, node: str) -> None:
        self.nodes = _check_nodes([*self.nodes, node])

    def remove_node(self, node: str) -> None:
        if node not in self.nodes:
            raise self._unknown(node)
        if node != self.nodes[-1]:
            raise ValueError(
                f"jump hash can only remove the last node ({self.nodes[-1]!r}), not {node!r}: "
                "removing another would renumber the buckets after it"
            )
        self.nodes.pop()


SCHEMES = ("modulo", "ring", "rendezvous", "jump")


def make_scheme(scheme: str, nodes: Sequence[str], vnodes: int = 100) -> _Scheme:
    """One of :data:`SCHEMES` over ``nodes`` (``vnodes`` is used by the ring only)."""
    if scheme == "modulo":
        return ModuloSharding(nodes)
    if scheme == "ring":
        return ConsistentHashRing(nodes, vnodes=vnodes)
    if scheme == "rendezvous":
        return RendezvousHashing(nodes)
    if scheme == "jump":
        return JumpHash(nodes)
    raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")


def node_names(count: int, prefix: str = "node-") -> list[str]:
    """``node-0``, ``node-1``, ...: ``count`` node names."""
    return [f"{prefix}{i}" for i in range(_check_count("count", count, 0))]


def _assign(scheme: str, hashes: np.ndarray, nodes: list[str], vnodes: int) -> np.ndarray:
    """Node index of every hash; the ring goes through the cached :func:`ring_assign`."""
    if scheme == "ring":
        return ring_assign(hashes, nodes, vnodes)
    return make_scheme(scheme, nodes, vnodes).assign(hashes)


# --- closed forms ------------------------------------------------------------------------


def moved_fraction_theory(scheme: str, nodes: int, change: str = "add") -> float:
    """Expected fraction of keys that change node when one node is added to (``"add"``) or
    removed from (``"remove"``) ``nodes`` nodes.

    Consistent schemes move only the keys the new node takes (``1/(n+1)``) or the removed
    node held (``1/n``). Modulo keeps a key only when ``h mod n == h mod (n+1)``, i.e.
    ``h mod n(n+1) < n``: ``1/(n+1)`` stay and ``n/(n+1)`` move on add, ``(n-1)/n`` on
    remove (the partitioning rule of thumb in ``shared/references.md``).
    """
    nodes = _check_count("nodes", nodes, 1 if change == "add" else 2)
    if change not in ("add", "remove"):
        raise ValueError(f"change must be 'add' or 'remove', got {change!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    big = nodes + 1 if change == "add" else nodes
    return (big - 1) / big if scheme == "modulo" else 1 / big


def ring_load_cv(nodes: int, vnodes: int, keys: int | None = None) -> float:
    """Expected spread of a ring's load: the root mean square, over random rings, of
    std/mean of keys per node, ``sqrt((n - 1) * (1/(n*k + 1) + 1/K))``.

    ``n*k`` uniform points cut the ring into arcs whose lengths are Dirichlet(1, ..., 1)
    (uniform spacings: R. Pyke, "Spacings", J. R. Stat. Soc. B, 1965); a node's share is
    the sum of its ``k`` arcs, Beta(k, (n-1)k), variance ``(1/n)(1 - 1/n)/(nk + 1)``.
    Counting ``K`` keys adds multinomial noise, ``(n - 1)/K`` in squared CV. Without that
    term (``keys=None``) this is ``sqrt((n-1)/n) / sqrt(k)`` for large k: the rule of
    thumb "std/mean about 1/sqrt(k)" of ``shared/references.md``, a few % lower.
    """
    n = _check_count("nodes", nodes, 1)
    k = _check_count("vnodes", vnodes, 1)
    noise = 0.0 if keys is None else 1 / _check_count("keys", keys, 1)
    return math.sqrt((n - 1) * (1 / (n * k + 1) + noise))


# --- experiments -------------------------------------------------------------------------


def load_cv(counts: np.ndarray) -> float:
    """std/mean of keys per node (population std: the mean is exactly keys/nodes)."""
    counts = np.asarray(counts, dtype=float)
    return float(counts.std() / counts.mean())


def resize_moves(
    scheme: str,
    nodes: int = 10,
    vnodes: int = 100,
    change: str = "add",
    keys: int = 100_000,
) -> dict:
    """Add one node to ``nodes`` nodes (or remove the last one) and count the keys that
    change node. Returns the measured fraction, the theory, and whether every moved key
    went to the new node (add) or came from the removed one (remove)."""
    nodes = _check_count("nodes", nodes, 1 if change == "add" else 2)
    hashes = key_hashes(keys)
    names = node_names(nodes + 1 if change == "add" else nodes)
    if scheme == "rendezvous":  # the weights of the smaller set are columns of the bigger
        weights = RendezvousHashing(names).weights(hashes)
        small, big = np.argmax(weights[:, :-1], axis=1), np.argmax(weights, axis=1)
    else:
        small = _assign(scheme, hashes, names[:-1], vnodes)
        big = _assign(scheme, hashes, names, vnodes)
    moved = small != big
    if change == "add":
        before, after = small, big
    else:
        before, after = big, small
    changed_node = len(names) - 1
    side = after if change == "add" else before
    only_that_node = bool(np.all(side[moved] == changed_node))
    return dict(
        scheme=scheme,
        nodes=nodes,
        change=change,
        moved=float(moved.mean()),
        theory=moved_fraction_theory(scheme, nodes, change),
        only_the_changed_node=only_that_node,
    )


def resize_table(nodes: int = 10, vnodes: int = 100, keys: int = 100_000) -> list[dict]:
    """:func:`resize_moves` for every scheme, adding and removing a node."""
    return [
        resize_moves(scheme, nodes, vnodes, change, keys)
        for change in ("add", "remove")
        for scheme in SCHEMES
    ]


def load_spread_vs_vnodes(
    vnodes: Sequence[int] = (1, 3, 10, 30, 100, 300, 1000),
    nodes: int = 20,
    trials: int = 20,
    keys: int = 100_000,
) -> dict[str, np.ndarray]:
    """Keys per node on ``trials`` rings (node names differ per trial) for each number of
    virtual nodes: the root mean square of std/mean, next to :func:`ring_load_cv` and the
    rule of thumb ``1/sqrt(k)``."""
    _check_count("trials", trials, 1)
    hashes = key_hashes(keys)
    measured = []
    for k in vnodes:
        squares = [
            load_cv(np.bincount(ring_assign(hashes, node_names(nodes, f"t{t}-node-"), k),
                                minlength=nodes)) ** 2
            for t in range(trials)
        ]  # fmt: skip
        measured.append(math.sqrt(np.mean(squares)))
    return dict(
        vnodes=np.array(vnodes),
        measured=np.array(measured),
        theory=np.array([ring_load_cv(nodes, k, keys) for k in vnodes]),
        rule_of_thumb=1 / np.sqrt(np.array(vnodes, dtype=float)),
    )


def keys_per_node(scheme: str, nodes: int = 10, vnodes: int = 100, keys: int = 100_000):
    """How many of ``keys`` keys each node holds."""
    hashes = key_hashes(keys)
    return np.bincount(_assign(scheme, hashes, node_names(nodes), vnodes), minlength=nodes)


def hot_key_load(
    scheme: str = "ring",
    nodes: int = 10,
    hot_share: float = 0.2,
    split: int = 1,
    cached: float = 0.0,
    vnodes: int = 100,
    keys: int = 20_000,
) -> dict:
    """Traffic per node when one key gets ``hot_share`` of all requests.

    The other requests spread over ``keys`` ordinary keys. ``split`` > 1 salts the hot
    key into ``split`` sub-keys (``hot#0``, ``hot#1``, ...; writes go to one, reads to any,
    or the reverse), each its own shard key. ``cached`` is the fraction of the hot key's
    requests a cache in front of the shards answers. Loads are fractions of all traffic
    that reaches the shards; ``max_over_mean`` is the busiest node over the average.
    """
    if not 0 <= hot_share < 1:
        raise ValueError(f"hot_share must be in [0, 1), got {hot_share!r}")
    if not 0 <= cached <= 1:
        raise ValueError(f"cached must be in [0, 1], got {cached!r}")
    split = _check_count("split", split, 1)
    names = node_names(_check_count("nodes", nodes, 1))
    hashes = key_hashes(keys)
    background = np.bincount(_assign(scheme, hashes, names, vnodes), minlength=nodes)
    background = (1 - hot_share) * background / keys
    hot_hashes = key_hashes(split, "hot#") if split > 1 else hash_keys(["hot"])
    hot = np.bincount(_assign(scheme, hot_hashes, names, vnodes), minlength=nodes)
    hot = hot_share * (1 - cached) * hot / hot.sum()
    total = background + hot
    reaching = total.sum()
    return dict(
        background=background / reaching,
        hot=hot / reaching,
        max_over_mean=float(total.max() / total.mean()),
    )


def hot_key_max_over_mean(nodes: int, hot_share: float) -> float:
    """Busiest node over the average when one unsplit key gets ``hot_share`` of the traffic
    and the rest is spread evenly: ``(x + (1 - x)/n) / (1/n) = n*x + 1 - x``, whatever the
    sharding scheme (all of a key's requests go to one node)."""
    n = _check_count("nodes", nodes, 1)
    if not 0 <= hot_share <= 1:
        raise ValueError(f"hot_share must be in [0, 1], got {hot_share!r}")
    return n * hot_share + 1 - hot_share
