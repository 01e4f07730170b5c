"""The LRU-with-TTL lab's checks: the hand-worked cases hold for the package's own
LRUCache, the package passes every check, and each typical mistake is caught by the
check meant to catch it (and only by the checks that should catch it)."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from sysdesign.scaling.caching import LRUCache
from sysdesign.scaling.caching_lab import EVICTION_CASES, EXPIRY_CASES, lab, run_case

CHECKS = ["eviction_order", "expiry", "capacity", "constant_time"]


class NoEviction:
    """Expires entries, but never evicts: the cache grows without bound."""

    def __init__(self, capacity, ttl):
        self.ttl, self.entries = ttl, {}

    def get(self, key, now):
        entry = self.entries.get(key)
        if entry is None or now >= entry[1]:
            return None
        return entry[0]

    def put(self, key, value, now):
        self.entries[key] = (value, now + self.ttl)

    def __len__(self):
        return len(self.entries)


class FIFOInsteadOfLRU(NoEviction):
    """Evicts the oldest write: a read does not make an entry recent."""

    def __init__(self, capacity, ttl):
        self.ttl, self.capacity, self.entries = ttl, capacity, OrderedDict()

    def put(self, key, value, now):
        self.entries[key] = (value, now + self.ttl)
        if len(self.entries) > self.capacity:
            self.entries.popitem(last=False)


class TTLIgnored:
    """A correct LRU that forgets the TTL."""

    def __init__(self, capacity, ttl):
        self.capacity, self.entries = capacity, OrderedDict()

    def get(self, key, now):
        if key not in self.entries:
            return None
        self.entries.move_to_end(key)
        return self.entries[key]

    def put(self, key, value, now):
        self.entries[key] = value
        self.entries.move_to_end(key)
        if len(self.entries) > self.capacity:
            self.entries.popitem(last=False)

    def __len__(self):
        return len(self.entries)


class ReadExtendsLife(TTLIgnored):
    """Expiry counted from the last read instead of the last write."""

    def __init__(self, capacity, ttl):
        super().__init__(capacity, ttl)
        self.ttl = ttl

    def get(self, key, now):
        entry = super().get(key, now)
        if entry is None or now >= entry[1]:
            return None
        self.entries[key] = (entry[0], now + self.ttl)
        return entry[0]

    def put(self, key, value, now):
        super().put(key, (value, now + self.ttl), now)


class ListScan:
    """Right answers, but the recency order is a list: every use removes from it, O(n)."""

    def __init__(self, capacity, ttl):
        self.capacity, self.ttl = capacity, ttl
        self.values, self.order = {}, []

    def get(self, key, now):
        entry = self.values.get(key)
        if entry is None:
            return None
        self.order.remove(key)
        if now >= entry[1]:
            del self.values[key]
            return None
        self.order.append(key)
        return entry[0]

    def put(self, key, value, now):
        if key in self.values:
            self.order.remove(key)
        self.values[key] = (value, now + self.ttl)
        self.order.append(key)
        if len(self.order) > self.capacity:
            del self.values[self.order.pop(0)]

    def __len__(self):
        return len(self.values)


class NotWritten:
    def __init__(self, capacity, ttl):
        raise NotImplementedError()


@pytest.mark.parametrize("case", EVICTION_CASES + EXPIRY_CASES, ids=lambda c: c.name)
def test_cases_hold_for_the_package_cache(case):
    run_case(LRUCache, case)  # raises CheckFailed on the first wrong answer


def test_lab_has_the_promised_checks():
    assert list(lab.checks) == CHECKS
    assert lab.id == "lru-ttl-cache"


def test_package_reference_passes_every_check():
    for name in CHECKS:
        result = lab.run(name, LRUCache)
        assert result.passed, result.message


@pytest.mark.parametrize(
    "broken, caught_by, message",
    [
        (NoEviction, {"eviction_order", "capacity"}, "len(cache) is wrong"),
        (FIFOInsteadOfLRU, {"eviction_order"}, "least recently used entry goes first"),
        (TTLIgnored, {"expiry"}, "expires ttl seconds after it was written"),
        (ReadExtendsLife, {"expiry"}, "wrong result in case"),
        (ListScan, {"constant_time"}, "slower as the cache grows"),
    ],
    ids=lambda x: getattr(x, "__name__", None),
)
def test_each_mistake_is_caught_by_its_check(broken, caught_by, message):
    checks = CHECKS if broken is ListScan else CHECKS[:3]  # only ListScan needs the timing
    outcome = {name: lab.run(name, broken) for name in checks}
    assert {name for name, result in outcome.items() if not result.passed} == caught_by
    messages = [outcome[name].message for name in caught_by]
    assert any(message in m for m in messages), messages


def test_unwritten_class_says_not_implemented():
    for name in CHECKS:
        result = lab.run(name, NotWritten)
        assert not result.passed
        assert "not implemented yet" in result.message
