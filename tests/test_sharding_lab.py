"""The consistent-hash-ring lab's checks: the package's ring passes, broken rings are caught."""

from __future__ import annotations

import bisect
import os
import random
import subprocess
import sys

import pytest

from sysdesign.scaling.sharding import ConsistentHashRing, hash_key
from sysdesign.scaling.sharding_lab import EXPECTED_SMALL_RING, SMALL_RING_KEYS, lab


def results(cls) -> dict[str, bool]:
    return {name: lab.run(name, cls).passed for name in lab.checks}


def failing(cls) -> set[str]:
    return {name for name, passed in results(cls).items() if not passed}


def test_the_package_ring_passes_every_check():
    assert failing(ConsistentHashRing) == set()


def test_the_expected_mapping_holds_in_another_process_with_another_hash_seed():
    code = (
        "from sysdesign.scaling.sharding import ConsistentHashRing as R\n"
        "r = R(['a', 'b', 'c'], vnodes=10)\n"
        "print(' '.join(r.node_for(f'key-{i}') for i in range(16)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "987"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == EXPECTED_SMALL_RING
    assert len(SMALL_RING_KEYS) == len(EXPECTED_SMALL_RING)


class Ring:
    """A correct ring with swappable pieces, for the broken variants below."""

    def position(self, label: str) -> int:
        return hash_key(label)

    def __init__(self, nodes, vnodes=100):
        self.vnodes, self.nodes, self.points = vnodes, [], []
        for node in nodes:
            self.add_node(node)

    def add_node(self, node):
        self.nodes.append(node)
        for i in range(self.vnodes):
            self.points.append((self.position(f"{node}#{i}"), node))
        self.points.sort()

    def remove_node(self, node):
        if node not in self.nodes:
            raise KeyError(node)
        self.nodes.remove(node)
        self.points = [p for p in self.points if p[1] != node]

    def node_for(self, key):
        if not self.points:
            raise ValueError("empty ring")
        at = bisect.bisect_left(self.points, (self.position(key), ""))
        return self.points[at % len(self.points)][1]


class ModuloRing(Ring):
    """Not a ring at all: the sorted nodes, modulo their number."""

    def node_for(self, key):
        if not self.nodes:
            raise ValueError("empty")
        return sorted(self.nodes)[hash_key(key) % len(self.nodes)]


class NoVirtualNodes(Ring):
    """Ignores vnodes: one point per node."""

    def __init__(self, nodes, vnodes=100):
        super().__init__(nodes, vnodes=1)


class PythonHash(Ring):
    """Python's hash(): stable within this process, different in the next one."""

    def position(self, label):
        return hash(label) % 2**64


class RandomPoints(Ring):
    """Random vnode positions: every ring is different."""

    def position(self, label):
        return random.getrandbits(64) if "#" in label else hash_key(label)


class RemoveRebuildsModulo(Ring):
    """After a removal, falls back to modulo hashing over the remaining nodes."""

    def remove_node(self, node):
        super().remove_node(node)
        self.rebuilt = True

    def node_for(self, key):
        if getattr(self, "rebuilt", False):
            return sorted(self.nodes)[hash_key(key) % len(self.nodes)]
        return super().node_for(key)


class OffByOne(Ring):
    """The first point strictly before the key (counter-clockwise)."""

    def node_for(self, key):
        if not self.points:
            raise ValueError("empty")
        at = bisect.bisect_left(self.points, (self.position(key), ""))
        return self.points[at - 1][1]


class Silent(Ring):
    """No errors: unknown nodes are ignored, an empty ring answers None."""

    def remove_node(self, node):
        if node in self.nodes:
            super().remove_node(node)

    def node_for(self, key):
        return super().node_for(key) if self.points else None


class Unfinished:
    def __init__(self, nodes, vnodes=100):
        raise NotImplementedError


@pytest.mark.parametrize(
    ("cls", "caught_by"),
    [
        (ModuloRing, {"add_node", "deterministic"}),
        (NoVirtualNodes, {"balance", "deterministic"}),
        (PythonHash, {"deterministic"}),
        (RandomPoints, {"deterministic"}),
        (RemoveRebuildsModulo, {"remove_node"}),
        (OffByOne, {"deterministic"}),
        (Silent, {"errors"}),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_broken_rings_are_caught(cls, caught_by):
    assert caught_by <= failing(cls)


def test_the_helper_ring_is_correct_so_the_variants_test_one_thing_each():
    assert failing(Ring) == set()


def test_an_unfinished_ring_fails_every_check_with_not_implemented():
    for name in lab.checks:
        result = lab.run(name, Unfinished)
        assert not result.passed and "not implemented yet" in result.message
