"""Checks for the capacity estimation lab (``labs/01-capacity-estimation-lab.ipynb``).

The expected values are literals worked out by hand (see the comments), not calls to the
course's own estimator, so a check cannot agree with a bug it shares with the package.
``tests/test_capacity.py`` runs these same checks against the package's estimator (all
pass) and against deliberately broken estimators (each is caught).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sysdesign.grading import CheckFailed, Lab, call, check_cases, describe_call, expect_close

lab = Lab("capacity-estimation", "Back-of-the-envelope capacity estimation")


def _pair(returned: Any, expected: tuple[float, float], shown: str) -> None:
    if not isinstance(returned, tuple | list) or len(returned) != 2:
        raise CheckFailed(
            "expected a pair of two numbers", call=shown, returned=returned, expected=expected,
            hint="end with `return first, second`",
        )  # fmt: skip
    for got, want in zip(returned, expected, strict=True):
        expect_close(got, want, call=shown, hint=None)


@lab.define(hint="requests per day / 86,400 seconds per day")
def check_average_qps(average_qps):
    return check_cases(
        average_qps,
        [
            (dict(daily_active_users=86_400, requests_per_user=1), 1.0),
            (dict(daily_active_users=1e6, requests_per_user=10), 115.74074074074075),
            (dict(daily_active_users=2.5e6, requests_per_user=40), 1157.4074074074074),
            (dict(daily_active_users=1e6, requests_per_user=0), 0.0),
        ],
    )


@lab.define(hint="with a ratio of r reads per write, writes are qps / (1 + r); reads are the rest")
def check_split_reads_writes(split_reads_writes):
    return check_cases(
        split_reads_writes,
        [
            (dict(qps=1000, read_write_ratio=4), (800.0, 200.0)),
            (dict(qps=660, read_write_ratio=10), (600.0, 60.0)),
            (dict(qps=90, read_write_ratio=1), (45.0, 45.0)),
        ],
        compare=_pair,
    )


@lab.define(hint="bytes per day = writes/s x 86,400 x bytes per write x replicas")
def check_storage_needed(storage_needed):
    return check_cases(
        storage_needed,
        [
            # 100 writes/s x 86,400 s x 1 KB x 3 replicas = 25.92 GB a day; x 365 days
            (
                dict(write_qps=100, write_bytes=1000, replication=3, retention_days=365),
                (25.92e9, 9.4608e12),
            ),
            # one 2 MB photo every 0.4 s, one copy, kept 30 days
            (
                dict(write_qps=2.5, write_bytes=2e6, replication=1, retention_days=30),
                (432e9, 12.96e12),
            ),
        ],
        compare=_pair,
    )


@lab.define(hint="a fraction of a server is still a whole server: round up (math.ceil)")
def check_servers_needed(servers_needed):
    cases = [
        (dict(peak_qps=20_000, server_qps=10_000), 2),
        (dict(peak_qps=20_001, server_qps=10_000), 3),
        (dict(peak_qps=1, server_qps=10_000), 1),
        (dict(peak_qps=0, server_qps=10_000), 1),
        (dict(peak_qps=789_930.6, server_qps=10_000), 79),
    ]

    def whole(returned, expected, shown):
        if isinstance(returned, bool) or not isinstance(returned, int):
            raise CheckFailed(
                f"expected a whole number of servers, got {type(returned).__name__}",
                call=shown, returned=returned, expected=expected,
                hint="math.ceil(...) returns an int",
            )  # fmt: skip
        if returned != expected:
            raise CheckFailed("wrong result", call=shown, returned=returned, expected=expected)

    return check_cases(servers_needed, cases, compare=whole)


# Two workloads with every answer worked out by hand:
# 2M users x 30 requests = 60M a day = 694.4/s; ratio 9 -> 625 reads/s and 69.44 writes/s.
SMALL = dict(
    daily_active_users=2e6, requests_per_user=30, read_write_ratio=9, write_bytes=500,
    read_bytes=2000, retention_days=365, peak_factor=3, replication=2,
    cache_hot_fraction=0.2, server_qps=500,
)  # fmt: skip
SMALL_EXPECTED = dict(
    avg_qps=694.4444444444445, read_qps=625.0, write_qps=69.44444444444444,
    peak_qps=2083.3333333333335, storage_per_day=6.0e9, storage_total=2.19e12,
    ingress=34722.22222222222, egress=1.25e6, cache_bytes=2.16e10, servers=5,
)  # fmt: skip
# The notebook's Twitter-like service: 150M users x 175 requests a day.
TWITTER = dict(
    daily_active_users=150e6, requests_per_user=175, read_write_ratio=65, write_bytes=1000,
    read_bytes=10_000, retention_days=1825, peak_factor=2.6, replication=3,
    cache_hot_fraction=0.2, server_qps=10_000,
)  # fmt: skip
TWITTER_EXPECTED = dict(
    avg_qps=303819.44444444444, read_qps=299216.1195286195, write_qps=4603.3249158249155,
    peak_qps=789930.5555555556, storage_per_day=1193181818181.818,
    storage_total=2177556818181818.0, ingress=4603324.915824915, egress=2992161195.2861953,
    cache_bytes=51704545454545.45, servers=79,
)  # fmt: skip


def _field(result: Any, name: str) -> Any:
    if isinstance(result, Mapping):
        return result.get(name, _ABSENT)
    return getattr(result, name, _ABSENT)


_ABSENT = object()


@lab.define(hint="build it from the four functions above; the notebook lists every field")
def check_estimate_capacity(estimate_capacity):
    for workload, expected in ((SMALL, SMALL_EXPECTED), (TWITTER, TWITTER_EXPECTED)):
        shown = describe_call(estimate_capacity, (), workload)
        result = call(estimate_capacity, **workload)
        for name, want in expected.items():
            got = _field(result, name)
            if got is _ABSENT:
                raise CheckFailed(
                    f"the result has no field {name!r}",
                    call=shown, returned=result,
                    expected=f"a dict (or object) with {', '.join(expected)}",
                )  # fmt: skip
            expect_close(got, want, call=f"{shown}[{name!r}]")
    return "2 workloads, 10 fields each"
