"""Foundations: back-of-the-envelope capacity estimation and latency numbers."""

from sysdesign.capacity.estimate import (
    TWITTER_LIKE,
    TWITTER_PUBLISHED,
    Estimate,
    average_qps,
    estimate_capacity,
    human,
    servers_needed,
    split_reads_writes,
    storage_needed,
)

__all__ = [
    "TWITTER_LIKE",
    "TWITTER_PUBLISHED",
    "Estimate",
    "average_qps",
    "estimate_capacity",
    "human",
    "servers_needed",
    "split_reads_writes",
    "storage_needed",
]
