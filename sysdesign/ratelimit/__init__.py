"""Rate limiting: five algorithms, in one process and in Redis, with traces to test them.

- :mod:`sysdesign.ratelimit.algorithms`: ``TokenBucket``, ``LeakingBucket``,
  ``FixedWindow``, ``SlidingWindowLog``, ``SlidingWindowCounter``, each with
  ``allow(key, now) -> Decision``, and a SimPy model of the leaking bucket's queue.
- :mod:`sysdesign.ratelimit.redis`: the same five, ``Redis``-prefixed, their state in
  Redis, one atomic Lua script per decision.
- :mod:`sysdesign.ratelimit.traces`: seeded synthetic traffic and ``replay``.

The algorithm and where its state lives are separate ideas: a ``RedisTokenBucket`` gives
exactly the decisions of a ``TokenBucket`` on the same requests.
"""

from sysdesign.ratelimit.algorithms import (
    Decision,
    FixedWindow,
    LeakingBucket,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
    first_admitted_delay,
    simulate_leaking_bucket,
)
from sysdesign.ratelimit.redis import (
    RedisFixedWindow,
    RedisLeakingBucket,
    RedisSlidingWindowCounter,
    RedisSlidingWindowLog,
    RedisTokenBucket,
)
from sysdesign.ratelimit.traces import (
    bursty_times,
    client_mix,
    one_client,
    poisson_times,
    replay,
)

__all__ = [
    "Decision",
    "FixedWindow",
    "LeakingBucket",
    "RedisFixedWindow",
    "RedisLeakingBucket",
    "RedisSlidingWindowCounter",
    "RedisSlidingWindowLog",
    "RedisTokenBucket",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "TokenBucket",
    "bursty_times",
    "client_mix",
    "first_admitted_delay",
    "one_client",
    "poisson_times",
    "replay",
    "simulate_leaking_bucket",
]
