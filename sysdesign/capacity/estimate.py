"""Back-of-the-envelope capacity estimation: traffic, storage, bandwidth, cache, servers.

Every function is plain arithmetic on named inputs, so a learner can check each step by
hand. Sizes are bytes and rates are per second; a day has 86,400 seconds; prefixes are
decimal (1 KB = 1,000 bytes), as in most estimates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from sysdesign.arguments import non_negative

SECONDS_PER_DAY = 86_400


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number greater than 0, got {value!r}")
    return value


_non_negative = non_negative


def average_qps(daily_active_users: float, requests_per_user: float) -> float:
    """Average requests per second: requests per day spread evenly over 86,400 seconds."""
    _positive("daily_active_users", daily_active_users)
    _non_negative("requests_per_user", requests_per_user)
    return daily_active_users * requests_per_user / SECONDS_PER_DAY


def split_reads_writes(qps: float, read_write_ratio: float) -> tuple[float, float]:
    """Split a request rate into ``(read_qps, write_qps)``; the ratio is reads per write."""
    _non_negative("qps", qps)
    _positive("read_write_ratio", read_write_ratio)
    write_qps = qps / (1 + read_write_ratio)
    return qps - write_qps, write_qps


def storage_needed(
    write_qps: float, write_bytes: float, replication: int, retention_days: float
) -> tuple[float, float]:
    """``(bytes per day, bytes over the retention period)``, counting every replica."""
    _non_negative("write_qps", write_qps)
    _non_negative("write_bytes", write_bytes)
    if isinstance(replication, bool) or not isinstance(replication, int) or replication < 1:
        raise ValueError(f"replication must be a whole number of at least 1, got {replication!r}")
    _positive("retention_days", retention_days)
    per_day = write_qps * SECONDS_PER_DAY * write_bytes * replication
    return per_day, per_day * retention_days


def servers_needed(peak_qps: float, server_qps: float) -> int:
    """Servers to carry the peak when each handles ``server_qps``: always round up."""
    _non_negative("peak_qps", peak_qps)
    _positive("server_qps", server_qps)
    return max(1, math.ceil(peak_qps / server_qps))


@dataclass(frozen=True)
class Estimate:
    """The results of :func:`estimate_capacity` (bytes, bytes/s, requests/s)."""

    requests_per_day: float
    avg_qps: float
    read_qps: float
    write_qps: float
    peak_qps: float
    peak_read_qps: float
    peak_write_qps: float
    storage_per_day: float
    storage_total: float
    ingress: float
    egress: float
    peak_egress: float
    cache_bytes: float
    servers: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def estimate_capacity(
    daily_active_users: float,
    requests_per_user: float,
    read_write_ratio: float,
    write_bytes: float,
    read_bytes: float,
    retention_days: float,
    peak_factor: float,
    replication: int,
    cache_hot_fraction: float,
    server_qps: float,
) -> Estimate:
    """All the numbers of a back-of-the-envelope estimate, from one workload.

    - traffic: average QPS, split into reads and writes, and the peak (average x peak factor);
    - storage: what the writes of one day take, with every replica, and over the retention;
    - bandwidth: ingress (writes x write size) and egress (reads x read size);
    - cache: the hot fraction of a day's read volume (the "80/20 rule": an upper bound,
      since repeated reads of one hot object are counted each time);
    - servers: the peak divided by what one server sustains, rounded up.
    """
    if isinstance(peak_factor, bool) or not isinstance(peak_factor, int | float) or peak_factor < 1:
        raise ValueError(f"peak_factor must be a number of at least 1, got {peak_factor!r}")
    if not isinstance(cache_hot_fraction, int | float) or not 0 <= cache_hot_fraction <= 1:
        raise ValueError(f"cache_hot_fraction must be between 0 and 1, got {cache_hot_fraction!r}")
    _non_negative("read_bytes", read_bytes)
    qps = average_qps(daily_active_users, requests_per_user)
    read_qps, write_qps = split_reads_writes(qps, read_write_ratio)
    per_day, total = storage_needed(write_qps, write_bytes, replication, retention_days)
    peak_qps = qps * peak_factor
    return Estimate(
        requests_per_day=qps * SECONDS_PER_DAY,
        avg_qps=qps,
        read_qps=read_qps,
        write_qps=write_qps,
        peak_qps=peak_qps,
        peak_read_qps=read_qps * peak_factor,
        peak_write_qps=write_qps * peak_factor,
        storage_per_day=per_day,
        storage_total=total,
        ingress=write_qps * write_bytes,
        egress=read_qps * read_bytes,
        peak_egress=read_qps * read_bytes * peak_factor,
        cache_bytes=cache_hot_fraction * read_qps * SECONDS_PER_DAY * read_bytes,
        servers=servers_needed(peak_qps, server_qps),
    )


# A Twitter-like service, sized from Twitter's "Timelines at Scale" talk (2013): 150M
# active users, about 400M tweets a day (4.6k/s on average, peaks above 12k/s) and about
# 300K timeline reads per second. The byte sizes, retention, replication and per-server
# throughput are this course's assumptions, stated so that a learner can change them.
TWITTER_LIKE = dict(
    daily_active_users=150e6,
    requests_per_user=175,  # 172.8 timeline reads + 2.7 tweets per user per day
    read_write_ratio=65,  # 300K reads/s / 4.6K tweets/s
    write_bytes=1_000,  # a tweet with its metadata and index entries
    read_bytes=10_000,  # a timeline page: about 20 tweets
    retention_days=5 * 365,
    peak_factor=2.6,  # 12k/s peak / 4.6k/s average
    replication=3,
    cache_hot_fraction=0.2,
    server_qps=10_000,
)

# What the talk published, for checking the estimate against.
TWITTER_PUBLISHED = dict(tweets_per_day=400e6, write_qps=4.6e3, peak_write_qps=12e3, read_qps=300e3)


_PREFIXES = ["", "K", "M", "G", "T", "P", "E"]


def human(value: float, unit: str = "") -> str:
    """``1_234_567, "B"`` -> ``"1.23 MB"``: three significant digits, decimal prefixes."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}".strip()
    exponent = min(max(int(math.floor(math.log10(abs(value)) / 3)), 0), len(_PREFIXES) - 1)
    scaled = value / 1000**exponent
    digits = 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0
    return f"{scaled:.{digits}f} {_PREFIXES[exponent]}{unit}".strip()
