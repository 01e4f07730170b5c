"""The five rate limiters with their state in Redis, shared by every app server.

``RedisTokenBucket(client, capacity=..., refill_rate=...)`` and its four siblings answer
``allow(key, now=None)`` exactly as their in-process twins in
:mod:`sysdesign.ratelimit.algorithms` do: on the same requests with the same ``now``, the
same decisions, the same ``remaining`` and ``retry_after``.

How a decision is made:

- **One round trip, atomic.** Each decision is one Lua script (``EVALSHA``, registered
  with ``client.register_script``): Redis runs a script to the end before it runs any
  other command, so two app servers can never both take the last token.
- **One Redis key per client key**, ``ratelimit:{<key>}:<algorithm>``. The braces are a
  Redis Cluster hash tag: everything a decision touches lives in one slot, so a limiter
  works unchanged on a cluster. Give limiters with different settings different
  ``prefix=`` values, or they share (and fight over) their state.
- **Idle keys expire.** After each admission the key's TTL (``PEXPIRE``) is set to the
  time its state takes to recover fully (a full bucket, an empty queue, a passed window),
  plus ``expiry_grace`` seconds (default 1) for app servers whose clocks run a little
  behind, or a replay with explicit times that runs slower than the clock. A rejection
  writes nothing new.
- **Server time.** With ``now=None`` the script reads Redis's own clock
  (``redis.call('TIME')``), so app servers with skewed clocks still agree. Scripts that
  read the time and then write need effect replication: the default since Redis 7; for
  older servers the script asks for it (``redis.replicate_commands()``).
- **Time never runs backwards for a key.** Several servers share a key and their clocks
  disagree a little, so a ``now`` earlier than what the key has already seen is moved up:
  to the last admission (token bucket, sliding log) or into the newest window (fixed
  window, sliding counter). The leaking bucket needs no such care: an early ``now`` only
  sees a fuller queue. (The in-process limiters raise ``ValueError`` instead: one process
  has one clock.)
- **Exact numbers.** Times and rates travel as strings with every digit
  (``repr`` in Python, ``%.17g`` in Lua); Lua's numbers are the same doubles as Python's
  floats, and the script does the same operations in the same order as the twin.
"""

from __future__ import annotations

import math

import redis as redis_py

from sysdesign.ratelimit.algorithms import (
    Decision,
    _check_key,
    _positive_number,
    _whole_number,
)

# What every script starts with: the time, and the helpers its body uses.
_PRELUDE = """
local GRACE_MS = tonumber(ARGV[#ARGV - 1])
local now = tonumber(ARGV[#ARGV])
if not now then  -- now=None: the server's clock, one clock for every app server
  if redis.replicate_commands then redis.replicate_commands() end  -- Redis < 7 only
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end

local function fmt(x)  -- every digit of a double
  return string.format('%.17g', x)
end

local function expire_in(key, seconds)  -- forget the key once its state has recovered
  local ms = math.max(math.min(math.ceil(seconds * 1000), 1e12) + GRACE_MS, 1)
  redis.call('PEXPIRE', key, string.format('%d', ms))
end

-- The delay after now at which admits(now + delay) first holds (see first_admitted_delay
-- in algorithms.py: the same steps, so the same double).
local function first_admitted_delay(admits, estimate)
  local delay = math.max(estimate, 0)
  local step = math.max(now + delay, 1) * 2^-52
  while not admits(now + delay) do
    delay = delay + step
    step = step * 2
  end
  return delay
end
"""

TOKEN_BUCKET_LUA = """
local key = KEYS[1]
local capacity, refill_rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local stored = redis.call('HMGET', key, 'tokens', 'last')
local tokens, last = tonumber(stored[1]), tonumber(stored[2])

local function tokens_at(t)
  return math.min(capacity, tokens + (t - last) * refill_rate)
end

local available = capacity  -- a new key: a full bucket
if tokens then
  if now < last then now = last end
  available = tokens_at(now)
end
if available >= 1 then
  available = available - 1
  redis.call('HSET', key, 'tokens', fmt(available), 'last', fmt(now))
  expire_in(key, (capacity - available) / refill_rate)
  return {1, math.floor(available), '0', ''}
end
local wait = first_admitted_delay(function(t) return tokens_at(t) >= 1 end,
                                  (1 - available) / refill_rate)
return {0, 0, fmt(wait), ''}
"""

LEAKING_BUCKET_LUA = """
local key = KEYS[1]
local capacity, leak_rate = tonumber(ARGV[1]), tonumber(ARGV[2])
-- The queue is a list of departure times; drop the requests that have left.
while true do
  local head = redis.call('LINDEX', key, 0)
  if not head or tonumber(head) > now then break end
  redis.call('LPOP', key)
end
local queued = redis.call('LLEN', key)
if queued < capacity then
  local start = now
  if queued > 0 then start = math.max(now, tonumber(redis.call('LINDEX', key, -1))) end
  local departs_at = start + 1 / leak_rate
  redis.call('RPUSH', key, fmt(departs_at))
  expire_in(key, departs_at - now)
  return {1, capacity - queued - 1, '0', fmt(departs_at)}
end
local head = tonumber(redis.call('LINDEX', key, 0))
local wait = first_admitted_delay(function(t) return head <= t end, head - now)
return {0, 0, fmt(wait), ''}
"""

FIXED_WINDOW_LUA = """
local key = KEYS[1]
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local index = math.floor(now / window)
local stored = redis.call('HMGET', key, 'window', 'count')
local count = 0
if stored[1] then
  local stored_index = tonumber(stored[1])
  if index < stored_index then index = stored_index end  -- a clock behind: newest window
  if index == stored_index then count = tonumber(stored[2]) end
end
if count < limit then
  count = count + 1
  redis.call('HSET', key, 'window', fmt(index), 'count', count)
  expire_in(key, (index + 1) * window - now)
  return {1, limit - count, '0', ''}
end
local wait = first_admitted_delay(function(t) return math.floor(t / window) > index end,
                                  (index + 1) * window - now)
return {0, 0, fmt(wait), ''}
"""

SLIDING_WINDOW_LOG_LUA = """
local key = KEYS[1]
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
-- A sorted set of the admitted requests, scored by time.
local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]
if newest and now < tonumber(newest) then now = tonumber(newest) end
redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now - window))  -- keep (now - window, now]
local count = redis.call('ZCARD', key)
if count < limit then
  -- Members must be unique: the time and the count so far (at one instant the set
  -- only grows, so the count tells apart requests at the same time).
  redis.call('ZADD', key, fmt(now), fmt(now) .. '#' .. count)
  expire_in(key, window)
  return {1, limit - count - 1, '0', ''}
end
local oldest = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
local wait = first_admitted_delay(function(t) return oldest <= t - window end,
                                  oldest + window - now)
return {0, 0, fmt(wait), ''}
"""

SLIDING_WINDOW_COUNTER_LUA = """
local key = KEYS[1]
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local stored = redis.call('HMGET', key, 'window', 'previous', 'current')
local stored_index = tonumber(stored[1])
local stored_previous, stored_current = tonumber(stored[2]), tonumber(stored[3])

local function counts_at(t)  -- window number, previous count, current count at time t
  local index = math.floor(t / window)
  if not stored_index then return index, 0, 0 end
  if index <= stored_index then  -- (<: a clock behind counts in the newest window)
    return stored_index, stored_previous, stored_current
  end
  if index == stored_index + 1 then return index, stored_current, 0 end
  return index, 0, 0
end

local function estimate_at(t)
  local index, previous, current = counts_at(t)
  local elapsed = math.max(t / window - index, 0)
  return previous * (1 - elapsed) + current
end

local index, previous, current = counts_at(now)
local estimate = estimate_at(now)
if estimate < limit then
  redis.call('HSET', key, 'window', fmt(index), 'previous', previous, 'current', current + 1)
  expire_in(key, (index + 2) * window - now)
  return {1, math.ceil(limit - estimate) - 1, '0', ''}
end
local target
if current < limit then
  target = (index + 1 - (limit - current) / previous) * window
else
  target = (index + 2 - limit / current) * window
end
local wait = first_admitted_delay(function(t) return estimate_at(t) < limit end, target - now)
return {0, 0, fmt(wait), ''}
"""


def _number(value: float) -> str:
    """A number as Redis arguments carry it: a string with every digit."""
    return repr(value)


class _RedisLimiter:
    """One Lua script per decision; subclasses name the script and its parameters."""

    algorithm: str
    lua: str

    def __init__(
        self, client: redis_py.Redis, *, prefix: str = "ratelimit", expiry_grace: float = 1.0
    ) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
        if (
            isinstance(expiry_grace, bool)
            or not isinstance(expiry_grace, int | float)
            or not 0 <= expiry_grace <= 86_400
        ):
            raise ValueError(
                f"expiry_grace must be a number of seconds from 0 to 86400, got {expiry_grace!r}"
            )
        self.client = client
        self.prefix = prefix
        self.expiry_grace = expiry_grace
        self._script = client.register_script(_PRELUDE + self.lua)

    def redis_key(self, key: str) -> str:
        """The Redis key holding ``key``'s state: ``ratelimit:{<key>}:<algorithm>``."""
        return f"{self.prefix}:{{{_check_key(key)}}}:{self.algorithm}"

    def _params(self) -> list[float]:
        raise NotImplementedError

    def allow(self, key: str, now: float | None = None) -> Decision:
        """Admit or reject one request of ``key`` at ``now`` (seconds; None: Redis's clock)."""
        if now is not None:
            if (
                isinstance(now, bool)
                or not isinstance(now, int | float)
                or not math.isfinite(now)
                or now < 0
            ):
                raise ValueError(
                    f"now must be None (the server's clock) or a finite number of seconds, "
                    f"at least 0, got {now!r}"
                )
            now = float(now)
        args = [_number(p) for p in self._params()]
        args += [str(math.ceil(self.expiry_grace * 1000)), "" if now is None else _number(now)]
        admitted, remaining, retry_after, departs_at = self._script(
            keys=[self.redis_key(key)], args=args
        )
        return Decision(
            admitted=bool(int(admitted)),
            remaining=int(remaining),
            retry_after=float(retry_after),
            departs_at=float(departs_at) if departs_at not in ("", b"") else None,
        )

    def __repr__(self) -> str:
        params = ", ".join(
            f"{k}={v!r}" for k, v in vars(self).items() if k not in ("client",) and k[0] != "_"
        )
        return f"{type(self).__name__}({params})"


class RedisTokenBucket(_RedisLimiter):
    """:class:`~sysdesign.ratelimit.algorithms.TokenBucket` in Redis: a hash ``tokens, last``."""

    algorithm = "token_bucket"
    lua = TOKEN_BUCKET_LUA

    def __init__(
        self, client, *, capacity: int, refill_rate: float, prefix="ratelimit", expiry_grace=1.0
    ):
        self.capacity = _whole_number("capacity", capacity)
        self.refill_rate = _positive_number("refill_rate", refill_rate)
        super().__init__(client, prefix=prefix, expiry_grace=expiry_grace)

    def _params(self):
        return [self.capacity, self.refill_rate]


class RedisLeakingBucket(_RedisLimiter):
    """:class:`~sysdesign.ratelimit.algorithms.LeakingBucket` in Redis: a list of departures."""

    algorithm = "leaking_bucket"
    lua = LEAKING_BUCKET_LUA

    def __init__(
        self, client, *, capacity: int, leak_rate: float, prefix="ratelimit", expiry_grace=1.0
    ):
        self.capacity = _whole_number("capacity", capacity)
        self.leak_rate = _positive_number("leak_rate", leak_rate)
        super().__init__(client, prefix=prefix, expiry_grace=expiry_grace)

    def _params(self):
        return [self.capacity, self.leak_rate]


class _RedisWindowLimiter(_RedisLimiter):
    """The window limiters' shared arguments: at most ``limit`` requests per ``window``."""

    def __init__(self, client, *, limit: int, window: float, prefix="ratelimit", expiry_grace=1.0):
        self.limit = _whole_number("limit", limit)
        self.window = _positive_number("window", window)
        super().__init__(client, prefix=prefix, expiry_grace=expiry_grace)

    def _params(self):
        return [self.limit, self.window]


class RedisFixedWindow(_RedisWindowLimiter):
    """:class:`~sysdesign.ratelimit.algorithms.FixedWindow` in Redis: a hash ``window, count``."""

    algorithm = "fixed_window"
    lua = FIXED_WINDOW_LUA


class RedisSlidingWindowLog(_RedisWindowLimiter):
    """:class:`~sysdesign.ratelimit.algorithms.SlidingWindowLog` in Redis: a sorted set."""

    algorithm = "sliding_window_log"
    lua = SLIDING_WINDOW_LOG_LUA


class RedisSlidingWindowCounter(_RedisWindowLimiter):
    """:class:`~sysdesign.ratelimit.algorithms.SlidingWindowCounter` in Redis: a hash
    ``window, previous, current``."""

    algorithm = "sliding_window_counter"
    lua = SLIDING_WINDOW_COUNTER_LUA
