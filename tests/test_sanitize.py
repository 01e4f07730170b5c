"""The nbval sanitizers replace what varies (timings, addresses, ports) and nothing else."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

CFG = Path(__file__).with_name("sanitize.cfg")


def sanitize(text: str) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(CFG, encoding="utf-8")
    for section in parser.sections():
        text = re.sub(parser[section]["regex"], parser[section]["replace"], text)
    return text


@pytest.mark.parametrize(
    "first, second",
    [
        ("Wall time: 2.38 μs", "Wall time: 15 ms"),  # %%time prints the Greek mu
        ("CPU times: user 3 µs, sys: 0 ns, total: 3 µs", "CPU times: user 1 ms, sys: 2 ms"),
        (
            "1.2 μs ± 3.4 ns per loop (mean ± std. dev. of 7 runs, 100,000 loops each)",
            "3.1 ms ± 10.2 µs per loop (mean ± std. dev. of 7 runs, 100 loops each)",
        ),
        ("<object at 0x7f3a2b>", "<object at 0x55d0c1ee>"),
        ("Redis at 127.0.0.1:40123", "Redis at 127.0.0.1:51515"),
    ],
)
def test_variable_parts_compare_equal(first, second):
    assert sanitize(first) == sanitize(second)


@pytest.mark.parametrize(
    "first, second",
    [
        ("servers at peak    79", "servers at peak    80"),
        ("Main memory reference   100 ns", "Main memory reference   250 ns"),
        ("✔ average_qps: passed (4 cases)", "✘ average_qps: not yet"),
    ],
)
def test_results_still_differ(first, second):
    assert sanitize(first) != sanitize(second)
