"""Foundations: the estimator, the worked example against Twitter's published figures, the
lab's checks (on the reference and on broken estimators), and the latency numbers."""

from __future__ import annotations

import math

import pytest

from sysdesign.capacity import estimate as est
from sysdesign.capacity import explorers, latency
from sysdesign.capacity.lab import lab


def test_worked_example_matches_what_twitter_published():
    """The Twitter-like example reproduces "Timelines at Scale" (2013) within 1%."""
    e = est.estimate_capacity(**est.TWITTER_LIKE)
    published = est.TWITTER_PUBLISHED
    assert e.write_qps * est.SECONDS_PER_DAY == pytest.approx(published["tweets_per_day"], rel=0.01)
    assert e.write_qps == pytest.approx(published["write_qps"], rel=0.01)
    assert e.peak_write_qps == pytest.approx(published["peak_write_qps"], rel=0.01)
    assert e.read_qps == pytest.approx(published["read_qps"], rel=0.01)


def test_worked_example_numbers_the_notebook_prints():
    e = est.estimate_capacity(**est.TWITTER_LIKE)
    assert est.human(e.requests_per_day) == "26.2 G"
    assert est.human(e.avg_qps) == "304 K"
    assert est.human(e.peak_qps) == "790 K"
    assert e.servers == 79
    assert est.human(e.storage_per_day, "B") == "1.19 TB"
    assert est.human(e.storage_total, "B") == "2.18 PB"
    assert est.human(e.egress, "B/s") == "2.99 GB/s"
    assert est.human(e.cache_bytes, "B") == "51.7 TB"


def test_each_step_by_hand():
    assert est.average_qps(86_400, 1) == 1
    assert est.split_reads_writes(1000, 4) == (800, 200)
    assert est.storage_needed(1, 1, 1, 10) == (86_400, 864_000)
    assert est.servers_needed(10_001, 10_000) == 2
    assert est.servers_needed(0, 10_000) == 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: est.average_qps(0, 10), "daily_active_users must be a number greater than 0"),
        (lambda: est.average_qps(10, -1), "requests_per_user must be a number of at least 0"),
        (lambda: est.split_reads_writes(10, 0), "read_write_ratio must be a number greater"),
        (lambda: est.storage_needed(1, 1, 1.5, 1), "replication must be a whole number"),
        (lambda: est.storage_needed(1, 1, 1, 0), "retention_days must be a number greater"),
        (lambda: est.servers_needed(10, 0), "server_qps must be a number greater than 0"),
        (
            lambda: est.estimate_capacity(**{**est.TWITTER_LIKE, "peak_factor": 0.5}),
            "peak_factor must be a number of at least 1, got 0.5",
        ),
        (
            lambda: est.estimate_capacity(**{**est.TWITTER_LIKE, "cache_hot_fraction": 2}),
            "cache_hot_fraction must be between 0 and 1, got 2",
        ),
    ],
)
def test_bad_input_names_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_human_formatting():
    assert est.human(0) == "0"
    assert est.human(999) == "999"
    assert est.human(1_234_567, "B") == "1.23 MB"
    assert est.human(12_345, "B/s") == "12.3 KB/s"
    assert est.human(2.5e21, "B") == "2500 EB"


# --- the lab's checks: the reference passes, every broken estimator is caught ---------


def reference_namespace():
    return {name: getattr(est, name) for name in ("average_qps", "split_reads_writes",
            "storage_needed", "servers_needed", "estimate_capacity")}  # fmt: skip


def test_reference_passes_every_check():
    results = lab.run_all(reference_namespace())
    assert [r.name for r in results] == [
        "average_qps", "split_reads_writes", "storage_needed", "servers_needed",
        "estimate_capacity",
    ]  # fmt: skip
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]


def per_hour(daily_active_users, requests_per_user):
    return daily_active_users * requests_per_user / 3600


def writes_are_reads_over_ratio(qps, read_write_ratio):
    return qps, qps / read_write_ratio


def forgets_replication(write_qps, write_bytes, replication, retention_days):
    per_day = write_qps * 86_400 * write_bytes
    return per_day, per_day * retention_days


def rounds_down(peak_qps, server_qps):
    return int(peak_qps // server_qps)


def no_minimum(peak_qps, server_qps):
    return math.ceil(peak_qps / server_qps)


def estimate_without_peak(**workload):
    e = est.estimate_capacity(**workload).as_dict()
    e["peak_qps"] = e["avg_qps"]
    return e


def estimate_missing_field(**workload):
    e = est.estimate_capacity(**workload).as_dict()
    del e["cache_bytes"]
    return e


def infinite(**workload):
    while True:
        pass


@pytest.mark.parametrize(
    "check, broken, expected_in_message",
    [
        ("average_qps", per_hour, "wrong result"),
        ("split_reads_writes", writes_are_reads_over_ratio, "wrong result"),
        ("storage_needed", forgets_replication, "wrong result"),
        ("servers_needed", rounds_down, "returned: 2"),
        ("servers_needed", no_minimum, "called:   no_minimum(peak_qps=0, server_qps=10000)"),
        ("estimate_capacity", estimate_without_peak, "['peak_qps']"),
        ("estimate_capacity", estimate_missing_field, "no field 'cache_bytes'"),
        ("estimate_capacity", est.estimate_capacity, None),  # the reference: passes
    ],
)
def test_checks_catch_broken_estimators(check, broken, expected_in_message):
    result = lab.run(check, broken)
    if expected_in_message is None:
        assert result.passed, result.message
    else:
        assert not result.passed
        assert expected_in_message in result.message


def test_check_of_a_stub_says_not_implemented_and_a_loop_times_out(monkeypatch):
    def stub(daily_active_users, requests_per_user):
        raise NotImplementedError("average_qps")

    result = lab.run("average_qps", stub)
    assert not result.passed and "not implemented yet" in result.message
    monkeypatch.setattr(lab.checks["estimate_capacity"], "time_limit", 0.2)
    result = lab.run("estimate_capacity", infinite)
    assert not result.passed and "did not finish within 0.2 s" in result.message


def test_renamed_function_is_reported():
    namespace = reference_namespace()
    namespace["avg_qps"] = namespace.pop("average_qps")
    result = lab.run_all(namespace)[0]
    assert not result.passed and "`average_qps` is not defined" in result.message


# --- the explorer and the latency numbers ----------------------------------------------


def test_capacity_explorer_draws_nine_numbers():
    fig = explorers.capacity.render()
    assert len(fig.data) == 9
    assert fig.data[2].value == 79  # servers at peak for the worked example
    with pytest.raises(ValueError, match="replication must be a whole number"):
        explorers.capacity.compute(replication=2.5)


def test_published_latencies_say_their_year_and_are_ordered():
    assert all("2010" in item.source for item in latency.PUBLISHED)
    assert [item.ns for item in latency.PUBLISHED] == sorted(item.ns for item in latency.PUBLISHED)


def test_measured_latencies_are_plausible():
    memory = latency.measure_memory_read(megabytes=16, repeat=3)
    assert 1_000 < memory.ns < 50_000_000  # 1 MB from RAM: between 1 us and 50 ms
    disk = latency.measure_disk_read(megabytes=4)
    assert all(0 < item.ns < 1e9 for item in disk)
    rtt = latency.measure_redis_round_trip(repeat=20)
    assert 0 < rtt.ns < 1e8 and rtt.source.startswith("measured here")
    fig = latency.latency_figure([*latency.PUBLISHED, memory, *disk, rtt])
    assert len(fig.data) == 2 and len(fig.data[1].x) == 4


def test_format_ns():
    assert latency.format_ns(0.5) == "0.5 ns"
    assert latency.format_ns(1_500) == "1.5 µs"
    assert latency.format_ns(250_000) == "250 µs"
    assert latency.format_ns(20_000_000) == "20 ms"
    assert latency.format_ns(1.5e9) == "1.5 s"
