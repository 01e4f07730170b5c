"""Latency numbers: the published ones with their year, and a few measured right here.

The famous table ("latency numbers every programmer should know") is Jeff Dean's, from
talks given around 2010; hardware has moved since (SSDs and networks most), so the course
prints the year beside every published number and measures what it can on the learner's
own machine: a sequential memory read, a disk read that bypasses the page cache where the
OS allows it, and a Redis round trip.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sysdesign import store

MB = 1_000_000


@dataclass(frozen=True)
class Latency:
    """One operation's latency in nanoseconds, with where the number comes from."""

    operation: str
    ns: float
    source: str


# Jeff Dean's numbers as collected by Jonas Bonér (gist "Latency Numbers Every Programmer
# Should Know", 2012; the numbers date from Dean's talks of about 2009-2010).
PUBLISHED_SOURCE = "Jeff Dean, about 2010"
PUBLISHED = [
    Latency("L1 cache reference", 0.5, PUBLISHED_SOURCE),
    Latency("Branch mispredict", 5, PUBLISHED_SOURCE),
    Latency("L2 cache reference", 7, PUBLISHED_SOURCE),
    Latency("Mutex lock/unlock", 25, PUBLISHED_SOURCE),
    Latency("Main memory reference", 100, PUBLISHED_SOURCE),
    Latency("Compress 1 KB with Zippy", 3_000, PUBLISHED_SOURCE),
    Latency("Send 1 KB over a 1 Gbps network", 10_000, PUBLISHED_SOURCE),
    Latency("Read 4 KB randomly from SSD", 150_000, PUBLISHED_SOURCE),
    Latency("Read 1 MB sequentially from memory", 250_000, PUBLISHED_SOURCE),
    Latency("Round trip within a datacenter", 500_000, PUBLISHED_SOURCE),
    Latency("Read 1 MB sequentially from SSD", 1_000_000, PUBLISHED_SOURCE),
    Latency("Disk seek", 10_000_000, PUBLISHED_SOURCE),
    Latency("Read 1 MB sequentially from disk", 20_000_000, PUBLISHED_SOURCE),
    Latency("Packet California -> Netherlands -> California", 150_000_000, PUBLISHED_SOURCE),
]


def _best_ns(run: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``run()`` in nanoseconds (the median resists a noisy machine)."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        run()
        samples.append(time.perf_counter_ns() - start)
    return float(statistics.median(samples))


def measure_memory_read(megabytes: int = 64, repeat: int = 5) -> Latency:
    """Sequentially read (sum) a buffer much larger than the CPU caches; time per 1 MB."""
    data = np.ones(megabytes * MB // 8, dtype=np.int64)
    data.sum()  # touch every page once before timing
    ns = _best_ns(data.sum, repeat) / megabytes
    return Latency("Read 1 MB sequentially from memory", ns, "measured here (numpy sum)")


def _drop_from_page_cache(fd: int) -> bool:
    """Ask the OS to forget a file's cached pages, so the next read goes to the device."""
    if not hasattr(os, "posix_fadvise"):
        return False
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    return True


def measure_disk_read(megabytes: int = 32, directory: str | None = None) -> list[Latency]:
    """Sequential 1 MB reads and random 4 KB reads of a fresh temporary file.

    The file's pages are dropped from the page cache first (``posix_fadvise``); where the
    OS cannot do that, the numbers are labelled as page-cache reads.
    """
    rng = np.random.default_rng(0)
    block = rng.integers(0, 256, MB, dtype=np.uint8).tobytes()
    with tempfile.NamedTemporaryFile(dir=directory, prefix="sysdesign-disk-") as handle:
        for _ in range(megabytes):
            handle.write(block)
        handle.flush()
        fd = handle.fileno()
        cold = _drop_from_page_cache(fd)
        start = time.perf_counter_ns()
        for i in range(megabytes):
            os.pread(fd, MB, i * MB)
        sequential = (time.perf_counter_ns() - start) / megabytes
        _drop_from_page_cache(fd)
        offsets = rng.integers(0, megabytes * MB // 4096, 200) * 4096
        start = time.perf_counter_ns()
        for offset in offsets:
            os.pread(fd, 4096, int(offset))
        random_4k = (time.perf_counter_ns() - start) / len(offsets)
    how = "measured here (page cache dropped)" if cold else "measured here (page cache)"
    return [
        Latency("Read 4 KB randomly from disk/SSD", random_4k, how),
        Latency("Read 1 MB sequentially from disk/SSD", sequential, how),
    ]


def measure_redis_round_trip(repeat: int = 200) -> Latency:
    """One PING round trip: to ``REDIS_URL``, else a throwaway local redis-server, else the
    embedded fakeredis (then it is a function call, not a network round trip, and says so)."""
    with contextlib.ExitStack() as stack:
        if os.environ.get(store.REDIS_URL_ENV):
            client, how = store.connect(), "measured here (REDIS_URL, PING)"
        elif store.redis_server_path():
            server = stack.enter_context(store.RedisServer())
            client, how = server.client(), "measured here (local redis-server, loopback PING)"
        else:
            client, how = store.connect(), "measured here (embedded fakeredis: no network!)"
        client.ping()
        ns = _best_ns(client.ping, repeat)
        client.close()
    return Latency("Redis round trip (PING)", ns, how)


def measure_all() -> list[Latency]:
    """Everything :mod:`latency` can measure on this machine, in about a second."""
    return [measure_memory_read(), *measure_disk_read(), measure_redis_round_trip()]


def latency_figure(latencies: list[Latency]):
    """Horizontal bars on a log scale: every latency, coloured by where it comes from."""
    import plotly.graph_objects as go

    from sysdesign.figures import new_figure

    ordered = sorted(latencies, key=lambda item: item.ns)
    fig = new_figure(height=90 + 24 * len(ordered), margin=dict(l=330, r=20, t=20, b=50))
    for measured in (False, True):
        rows = [item for item in ordered if item.source.startswith("measured") == measured]
        fig.add_trace(
            go.Bar(
                x=[item.ns for item in rows],
                y=[item.operation for item in rows],
                orientation="h",
                name="measured here" if measured else PUBLISHED_SOURCE,
                hovertext=[item.source for item in rows],
            )
        )
    fig.update_xaxes(type="log", title="nanoseconds (log scale)")
    fig.update_yaxes(categoryorder="array", categoryarray=[item.operation for item in ordered])
    return fig


def format_ns(ns: float) -> str:
    """``1_500 -> '1.5 µs'``: nanoseconds in the unit a person would say."""
    for unit, size in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= size:
            return f"{ns / size:.3g} {unit}"
    return f"{ns:.3g} ns"
