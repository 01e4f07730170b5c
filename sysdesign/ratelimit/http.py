"""A rate limiter in front of an API: a tiny HTTP service, its headers, and a load generator.

:class:`RateLimitedService` is a standard-library HTTP server (``ThreadingHTTPServer``) on
a free loopback port, in a background thread. Every ``GET`` is one call of the API on
behalf of a client key: the ``X-Client-Id`` header, or the client's IP address when the
header is missing. The key goes through any of the package's limiters, in-process
(``TokenBucket``...) or in Redis (``RedisTokenBucket``...), and the answer is

- ``200`` and a small JSON body when the request is admitted;
- ``429 Too Many Requests`` with ``Retry-After`` when it is not.

Both carry the rate-limit headers, in the spirit of the IETF draft "RateLimit header
fields for HTTP" (draft-ietf-httpapi-ratelimit-headers), under the ``X-`` names most
APIs use today:

==========================  ==============================================================
``X-RateLimit-Limit``       the quota: the bucket's ``capacity`` or the window's ``limit``
``X-RateLimit-Remaining``   requests the key could still make right now (the limiter's
                            ``Decision.remaining``; 0 on a 429)
``X-RateLimit-Reset``       whole seconds, rounded up, until the full quota is back if the
                            client sends nothing more. A delay, not a clock time (GitHub
                            sends a Unix time), as the draft does: client and server
                            clocks need not agree. See :func:`reset_after`.
``Retry-After``             (429 only) whole seconds, rounded **up** (RFC 9110's
                            delay-seconds are integers): a client that waits that long is
                            admitted, unless the same key spent the quota meanwhile.
==========================  ==============================================================

``Retry-After`` answers "when may I send one more?", ``X-RateLimit-Reset`` "when am I
back to full?": on a 429, Reset >= Retry-After. When the limiter itself fails (Redis
unreachable), the service fails closed: ``503`` and the error, no call of the API.

Time comes from an injectable ``clock`` (:class:`ManualClock` in tests and notebooks), so
the headers a test reads are exact. :func:`run_load` is the load generator: one thread
and one keep-alive connection (``http.client``) per client, each sending at its own rate;
:func:`run_load_virtual` sends the same requests, over the same HTTP, in virtual time
driven by a ``ManualClock``, so the counts are the same on every machine.

:class:`ConcurrentRequests` is Stripe's second limiter: at most ``limit`` requests of one
key in flight at once (a counting semaphore per key).
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import http.client
import json
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sysdesign.ratelimit import algorithms
from sysdesign.ratelimit import redis as rl_redis
from sysdesign.ratelimit.algorithms import Decision
from sysdesign.store import free_port

BEHAVIOURS = ("normal", "polite", "aggressive")

# The algorithm behind each in-process limiter class; the Redis twins name theirs.
_ALGORITHMS = {
    algorithms.TokenBucket: "token_bucket",
    algorithms.LeakingBucket: "leaking_bucket",
    algorithms.FixedWindow: "fixed_window",
    algorithms.SlidingWindowLog: "sliding_window_log",
    algorithms.SlidingWindowCounter: "sliding_window_counter",
}


def algorithm_of(limiter) -> str:
    """``"token_bucket"``, ``"fixed_window"``...: which of the five algorithms ``limiter`` runs."""
    if isinstance(limiter, rl_redis._RedisLimiter):
        return limiter.algorithm
    for cls, name in _ALGORITHMS.items():
        if isinstance(limiter, cls):
            return name
    raise ValueError(
        "limiter must be one of the package's limiters (TokenBucket, LeakingBucket, "
        "FixedWindow, SlidingWindowLog, SlidingWindowCounter or a Redis twin), "
        f"got {limiter!r}"
    )


def _finite(name: str, value, *, low: float = 0.0, strict: bool = True) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or (value <= low if strict else value < low)
    ):
        bound = f"greater than {low:g}" if strict else f"at least {low:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


# --- a clock that tests move by hand ----------------------------------------------------


class ManualClock:
    """A clock that only moves when told to: ``clock()`` reads it, ``advance`` moves it.

    Give it to a :class:`RateLimitedService` as ``clock=`` and every decision happens at
    the time you set, so headers and counts are the same on every run.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = _finite("start", start, strict=False)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def set(self, now: float) -> None:
        """Move the clock to ``now`` (never backwards: limiters read one clock)."""
        now = _finite("now", now, strict=False)
        with self._lock:
            if now < self.now:
                raise ValueError(f"now must not go backwards: got {now!r} after {self.now!r}")
            self.now = now

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` forward; return the new time."""
        self.set(self.now + _finite("seconds", seconds, strict=False))
        return self.now

    def __repr__(self) -> str:
        return f"ManualClock(now={self.now!r})"


# --- the headers --------------------------------------------------------------------------


def retry_after_seconds(retry_after: float) -> int:
    """``Retry-After`` for a limiter's exact ``retry_after``: whole seconds, rounded up.

    Rounding down would send the client back too early, into another 429.
    """
    return math.ceil(_finite("retry_after", retry_after, strict=False))


def reset_after(limiter, decision: Decision, now: float | None) -> float:
    """Seconds until ``limiter`` gives the key its full quota back, if it sends nothing more.

    Exact where the decision and the time tell it, an upper bound where they do not
    (``now=None``: the Redis limiter read Redis's clock, the service does not know it):

    - token and leaking bucket: ``(capacity - remaining) / rate``; ``remaining`` is the
      whole part of the tokens left, so this is at most one ``1 / rate`` too long;
    - fixed window: until the window ends (``window`` if the time is unknown);
    - sliding log: ``window`` (the newest admitted request stops counting then);
    - sliding counter: until the *next* window ends, when the current count has faded
      (``2 * window`` if the time is unknown).
    """
    algorithm = algorithm_of(limiter)
    if algorithm in ("token_bucket", "leaking_bucket"):
        rate = limiter.refill_rate if algorithm == "token_bucket" else limiter.leak_rate
        return (limiter.capacity - decision.remaining) / rate
    window = limiter.window
    if algorithm == "sliding_window_log":
        return window
    windows_left = 1 if algorithm == "fixed_window" else 2
    if now is None:
        return windows_left * window
    return (math.floor(now / window) + windows_left) * window - now


def quota_of(limiter) -> int:
    """The quota ``X-RateLimit-Limit`` advertises: ``capacity`` or ``limit``."""
    algorithm = algorithm_of(limiter)
    return limiter.capacity if algorithm.endswith("bucket") else limiter.limit


def rate_limit_headers(limiter, decision: Decision, now: float | None) -> dict[str, str]:
    """The headers of one answer: ``X-RateLimit-*`` always, ``Retry-After`` on a 429."""
    headers = {
        "X-RateLimit-Limit": str(quota_of(limiter)),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(math.ceil(reset_after(limiter, decision, now))),
    }
    if not decision.admitted:
        headers["Retry-After"] = str(retry_after_seconds(decision.retry_after))
    return headers


# --- Stripe's second limiter: requests in flight ---------------------------------------


class ConcurrentRequests:
    """At most ``limit`` requests of one key in flight at once: a semaphore per key.

    ``try_acquire(key)`` takes a slot or returns False at once (no waiting: the service
    answers 429); ``release(key)`` gives it back when the request is done. A key with no
    request in flight holds no memory.
    """

    def __init__(self, *, limit: int) -> None:
        self.limit = algorithms._whole_number("limit", limit)
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()

    def try_acquire(self, key: str) -> bool:
        algorithms._check_key(key)
        with self._lock:
            if self._in_flight[key] >= self.limit:
                return False
            self._in_flight[key] += 1
            return True

    def release(self, key: str) -> None:
        with self._lock:
            if self._in_flight[key] <= 0:
                raise ValueError(f"key {key!r} has no request in flight to release")
            self._in_flight[key] -= 1
            if not self._in_flight[key]:
                del self._in_flight[key]

    def in_flight(self, key: str) -> int:
        """How many requests of ``key`` are in flight now."""
        with self._lock:
            return self._in_flight[key]

    def __repr__(self) -> str:
        return f"ConcurrentRequests(limit={self.limit})"


# --- the service -------------------------------------------------------------------------


def hello(key: str) -> dict:
    """The API behind the limiter: says hello. Pass your own as ``handler=``."""
    return {"hello": key}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection carries many requests
    disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms stalls
    server_version = "sysdesign-ratelimit"
    timeout = 30  # an idle keep-alive connection is closed after this many seconds

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        service = self.server.service
        key = self.headers.get(service.key_header) or self.client_address[0]
        try:
            status, headers, body = service.respond(key)
        except Exception as exc:  # the API itself failed
            status, headers, body = 500, {}, {"error": f"API failed: {exc!r}"[:200]}
        service.count(key, status)
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass  # one line per request on stderr would drown a notebook


class _Server(ThreadingHTTPServer):
    """A thread per connection; remembers connections and threads to end them on stop."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address, service: RateLimitedService) -> None:
        self.service = service
        self._connections: set[socket.socket] = set()
        self._connection_threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"ratelimit-http-{self.server_address[1]}-conn",
            daemon=True,
        )
        with self._lock:
            self._connections.add(request)
            self._connection_threads.add(thread)
        thread.start()

    def _serve_connection(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError:
            pass  # the client went away, or stop() closed the connection
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._connections.discard(request)
                self._connection_threads.discard(threading.current_thread())

    def end_connections(self, timeout: float) -> None:
        with self._lock:
            connections, threads = list(self._connections), list(self._connection_threads)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))


class RateLimitedService:
    """An HTTP API behind a rate limiter, on a free loopback port, in a background thread.

    >>> bucket = TokenBucket(capacity=5, refill_rate=1)
    >>> with RateLimitedService(bucket) as service:  # doctest: +SKIP
    ...     fetch(service, "alice").status
    200

    ``limiter``: any of the package's ten limiters. ``clock``: where ``now`` comes from;
    by default ``time.monotonic`` for an in-process limiter and Redis's own clock
    (``now=None``) for a Redis one, so that app servers with skewed clocks agree; pass a
    :class:`ManualClock` for exact tests. ``concurrency``: an optional
    :class:`ConcurrentRequests`, checked after the rate limiter. ``handler(key) -> dict``:
    the API itself (:func:`hello` by default). ``key_header``: the header naming the client.
    """

    def __init__(
        self,
        limiter,
        *,
        clock: Callable[[], float] | None = None,
        concurrency: ConcurrentRequests | None = None,
        handler: Callable[[str], dict] = hello,
        key_header: str = "X-Client-Id",
        port: int | None = None,
    ) -> None:
        algorithm_of(limiter)  # a clear ValueError for anything else
        if clock is not None and not callable(clock):
            raise ValueError(f"clock must be None or a function returning seconds, got {clock!r}")
        if concurrency is not None and not isinstance(concurrency, ConcurrentRequests):
            raise ValueError(f"concurrency must be None or ConcurrentRequests, got {concurrency!r}")
        if not callable(handler):
            raise ValueError(f"handler must be a function of the client key, got {handler!r}")
        if not isinstance(key_header, str) or not key_header.strip():
            raise ValueError(f"key_header must be a header name, got {key_header!r}")
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
        ):
            raise ValueError(f"port must be None (a free port) or 1 to 65535, got {port!r}")
        self.limiter = limiter
        self.in_redis = isinstance(limiter, rl_redis._RedisLimiter)
        self.clock = clock if clock is not None or self.in_redis else time.monotonic
        self.concurrency = concurrency
        self.handler = handler
        self.key_header = key_header
        self.requested_port = port
        self.port: int | None = None
        self.stats: Counter[tuple[str, int]] = Counter()  # (key, status) -> answers sent
        # An in-process limiter is plain Python state and insists that time never goes
        # backwards: one decision at a time. A Redis limiter is atomic in Redis already.
        self._decide_lock = threading.Lock() if not self.in_redis else contextlib.nullcontext()
        self._stats_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # The rate limiting itself, without HTTP: what a test or a notebook can call directly.
    def respond(self, key: str) -> tuple[int, dict[str, str], dict]:
        """``(status, headers, body)`` for one request of ``key``: the service minus HTTP."""
        try:
            with self._decide_lock:
                now = self.clock() if self.clock is not None else None
                decision = self.limiter.allow(key, now)
        except Exception as exc:  # Redis is down, say: fail closed, and say why
            return 503, {"Retry-After": "1"}, {"error": f"limiter unavailable: {exc!r}"[:200]}
        headers = rate_limit_headers(self.limiter, decision, now)
        if not decision.admitted:
            return 429, headers, {"error": "rate limited", "retry_after": decision.retry_after}
        if self.concurrency is None:
            return 200, headers, self.handler(key)
        if not self.concurrency.try_acquire(key):
            headers["Retry-After"] = "1"  # a slot frees when a request ends: no better guess
            return 429, headers, {"error": "too many concurrent requests"}
        try:
            return 200, headers, self.handler(key)
        finally:
            self.concurrency.release(key)

    def count(self, key: str, status: int) -> None:
        """Tally one answer in ``stats`` (the HTTP handler calls this for every request)."""
        with self._stats_lock:
            self.stats[key, status] += 1

    # --- running it -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the service is not running; call start() or use `with`")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> RateLimitedService:
        if self._server is not None:
            raise RuntimeError("the service is already running")
        for attempt in range(5):  # a free port can be taken between choosing and binding
            port = self.requested_port or free_port()
            try:
                self._server = _Server(("127.0.0.1", port), self)
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or self.requested_port or attempt == 4:
                    raise
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"ratelimit-http-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close the port, end open keep-alive connections, join threads."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()  # serve_forever returns
        server.server_close()  # the port is free
        server.end_connections(timeout)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> RateLimitedService:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"on 127.0.0.1:{self.port}" if self.running else "stopped"
        return f"<RateLimitedService {self.limiter!r} {state}>"


# --- one request, shown ------------------------------------------------------------------


def _address(target) -> tuple[str, int]:
    """``(host, port)`` of a running service or an ``http://host:port`` URL."""
    if isinstance(target, RateLimitedService):
        return "127.0.0.1", int(target.url.rsplit(":", 1)[1])
    if isinstance(target, str) and target.startswith("http://"):
        host, _, port = target.removeprefix("http://").rstrip("/").rpartition(":")
        if host and port.isdigit():
            return host, int(port)
    raise ValueError(f"target must be a RateLimitedService or 'http://host:port', got {target!r}")


@dataclass(frozen=True)
class Response:
    """One HTTP answer: status, headers in the order sent, and the JSON body."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: dict

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def text(self, hide: Sequence[str] = ("Date", "Server")) -> str:
        """The response as it went over the wire, minus the headers in ``hide``."""
        hidden = {name.lower() for name in hide}
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in hidden]
        return "\n".join([*lines, "", json.dumps(self.body)])

    def __str__(self) -> str:
        return self.text()


def _request(connection: http.client.HTTPConnection, client_id: str | None) -> Response:
    headers = {} if client_id is None else {"X-Client-Id": client_id}
    connection.request("GET", "/", headers=headers)
    answer = connection.getresponse()
    data = answer.read()
    return Response(answer.status, answer.reason, tuple(answer.getheaders()), json.loads(data))


def fetch(target, client_id: str | None = None, *, timeout: float = 5.0) -> Response:
    """One ``GET /`` to a service (or URL) as ``client_id`` (no header: keyed by address)."""
    connection = http.client.HTTPConnection(*_address(target), timeout=timeout)
    try:
        return _request(connection, client_id)
    finally:
        connection.close()


# --- the load generator ------------------------------------------------------------------


@dataclass(frozen=True)
class LoadClient:
    """A client of the load generator: its id, the rate it sends at, what it does on a 429.

    ``behaviour``: ``"normal"`` gives up on a rejected request and carries on with its
    schedule; ``"polite"`` waits ``Retry-After`` seconds, then retries it; ``"aggressive"``
    retries it at once (after ``retry_delay``). Requests are due every ``1 / rate``
    seconds; a client that has fallen behind (waiting, retrying) sends its due requests
    back to back afterwards. One connection, one request at a time.
    """

    name: str
    rate: float
    behaviour: str = "normal"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        _finite("rate", self.rate)
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {BEHAVIOURS}, got {self.behaviour!r}")


@dataclass
class ClientResult:
    """What one client saw: requests sent, answered 200 / 429, failed; latencies in ms."""

    name: str
    behaviour: str
    rate: float
    sent: int = 0
    admitted: int = 0
    rejected: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def success_ratio(self) -> float:
        """Admitted / sent: the share of this client's requests that did any work."""
        return self.admitted / self.sent if self.sent else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank; NaN for no values."""
    _finite("q", q, strict=False)
    if not 0 <= q <= 100:
        raise ValueError(f"q must be from 0 to 100, got {q!r}")
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(math.ceil(q / 100 * len(ordered)), 1) - 1]


@dataclass
class LoadResult:
    """Per-client counts of a load run, and its duration (seconds, real or virtual)."""

    clients: list[ClientResult]
    duration: float
    virtual: bool

    def client(self, name: str) -> ClientResult:
        return next(c for c in self.clients if c.name == name)

    def latency_ms(self, q: float, behaviour: str | None = None) -> float:
        """Latency percentile over all requests (or one behaviour's), in milliseconds."""
        return percentile(
            [
                ms
                for c in self.clients
                if behaviour is None or c.behaviour == behaviour
                for ms in c.latencies_ms
            ],
            q,
        )

    def by_behaviour(self) -> dict[str, dict[str, float]]:
        """Totals per behaviour: sent, admitted, rejected and admitted / sent."""
        totals: dict[str, dict[str, float]] = {}
        for c in self.clients:
            row = totals.setdefault(c.behaviour, {"sent": 0, "admitted": 0, "rejected": 0})
            for name in ("sent", "admitted", "rejected"):
                row[name] += getattr(c, name)
        for row in totals.values():
            row["success_ratio"] = row["admitted"] / row["sent"] if row["sent"] else 0.0
        return totals

    def table(self) -> str:
        """A fixed-width table, one row per client."""
        rows = [
            f"{'client':12} {'behaviour':10} {'rate/s':>6} {'sent':>6} {'200':>5} {'429':>6}"
            f" {'errors':>6} {'200/sent':>8}"
        ]
        for c in self.clients:
            rows.append(
                f"{c.name:12} {c.behaviour:10} {c.rate:6g} {c.sent:6d} {c.admitted:5d}"
                f" {c.rejected:6d} {c.errors:6d} {c.success_ratio:8.0%}"
            )
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.table()


class ClientSchedule:
    """When a client sends next, given what it got: the same rules in real and virtual time."""

    def __init__(self, client: LoadClient, start: float, end: float, retry_delay: float):
        self.client, self.start, self.end, self.retry_delay = client, start, end, retry_delay
        self.due = 0  # index of the request being sent; request k is due at start + k/rate

    def first(self) -> float | None:
        return self.start if self.start < self.end else None

    def after(self, now: float, status: int | None, retry_after: str | None) -> float | None:
        behaviour = self.client.behaviour
        if status == 429 and behaviour == "aggressive":
            at = now + self.retry_delay
        elif status == 429 and behaviour == "polite":
            wait = float(retry_after) if retry_after and retry_after.isdigit() else 1.0
            at = now + wait
        else:  # done (200), given up (normal 429), or failed: on to the next request
            self.due += 1
            at = max(now, self.start + self.due / self.client.rate)
        return at if at < self.end else None


def _check_load(clients, duration, retry_delay) -> list[LoadClient]:
    clients = list(clients) if not isinstance(clients, LoadClient) else [clients]
    if not clients or not all(isinstance(c, LoadClient) for c in clients):
        raise ValueError(f"clients must be a non-empty list of LoadClient, got {clients!r}")
    names = [c.name for c in clients]
    if len(set(names)) != len(names):
        raise ValueError(f"clients must have different names, got {names!r}")
    _finite("duration", duration)
    _finite("retry_delay", retry_delay, strict=False)
    return clients


def _targets(target) -> list[tuple[str, int]]:
    """One address, or several taken in turn by each client (a round-robin balancer)."""
    if isinstance(target, list | tuple):
        if not target:
            raise ValueError("target must name at least one service")
        return [_address(t) for t in target]
    return [_address(target)]


def _send(
    result: ClientResult, connections: list, turn: int, addresses, timeout: float
) -> tuple[int | None, str | None]:
    """One request on this client's keep-alive connection to ``addresses[turn]``."""
    index = turn % len(addresses)
    if connections[index] is None:
        connections[index] = http.client.HTTPConnection(*addresses[index], timeout=timeout)
    began = time.perf_counter()
    result.sent += 1
    try:
        response = _request(connections[index], result.name)
    except (OSError, http.client.HTTPException, ValueError):
        connections[index].close()
        connections[index] = None  # reconnect next time
        result.errors += 1
        return None, None
    result.latencies_ms.append((time.perf_counter() - began) * 1000)
    if response.status == 200:
        result.admitted += 1
    elif response.status == 429:
        result.rejected += 1
    else:
        result.errors += 1
    return response.status, response.header("Retry-After")


def run_load(
    target,
    clients: Sequence[LoadClient],
    *,
    duration: float,
    retry_delay: float = 0.0,
    timeout: float = 5.0,
) -> LoadResult:
    """Real time: one thread and one keep-alive connection per client, for ``duration`` s.

    ``target``: a running service or URL, or a list of them that each client takes in
    turn. ``retry_delay``: how long an aggressive client pauses before retrying (0: at
    once). Latencies are measured around each request, on this machine.
    """
    clients = _check_load(clients, duration, retry_delay)
    addresses = _targets(target)
    results = [ClientResult(c.name, c.behaviour, c.rate) for c in clients]
    start = time.monotonic() + 0.05  # every thread starts its schedule at the same instant

    def run(client: LoadClient, result: ClientResult) -> None:
        schedule = ClientSchedule(client, start, start + duration, retry_delay)
        connections: list = [None] * len(addresses)
        at, turn = schedule.first(), 0
        try:
            while at is not None:
                pause = at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                status, retry_after = _send(result, connections, turn, addresses, timeout)
                turn += 1
                at = schedule.after(time.monotonic(), status, retry_after)
        finally:
            for connection in connections:
                if connection is not None:
                    connection.close()

    threads = [
        threading.Thread(target=run, args=pair, name=f"load-{pair[0].name}", daemon=True)
        for pair in zip(clients, results, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(results, duration, virtual=False)


def run_load_virtual(
    target,
    clients: Sequence[LoadClient],
    *,
    duration: float,
    retry_delay: float = 0.01,
    timeout: float = 5.0,
) -> LoadResult:
    """The same clients in virtual time: the same counts on every machine.

    Every service in ``target`` must read the same :class:`ManualClock`. The requests go
    over real HTTP, one at a time in time order (ties: in the order of ``clients``); before
    each, the clock is set to the moment the client sends, and a request takes no virtual
    time. An aggressive client retries ``retry_delay`` virtual seconds later (> 0: "at
    once" would never let time move). Latencies are still measured, in real time.
    """
    clients = _check_load(clients, duration, retry_delay)
    _finite("retry_delay", retry_delay)
    services = list(target) if isinstance(target, list | tuple) else [target]
    clocks = {id(getattr(s, "clock", None)) for s in services}
    clock = getattr(services[0], "clock", None) if services else None
    if not isinstance(clock, ManualClock) or len(clocks) != 1:
        raise ValueError(
            "target must be RateLimitedService(s) sharing one ManualClock (clock=ManualClock())"
            " for virtual time"
        )
    addresses = _targets(services)
    results = [ClientResult(c.name, c.behaviour, c.rate) for c in clients]
    start = clock()
    schedules = [ClientSchedule(c, start, start + duration, retry_delay) for c in clients]
    connections = [[None] * len(addresses) for _ in clients]
    turns = [0] * len(clients)
    events = [(s.first(), i) for i, s in enumerate(schedules) if s.first() is not None]
    heapq.heapify(events)
    try:
        while events:
            at, i = heapq.heappop(events)
            clock.set(at)
            status, retry_after = _send(results[i], connections[i], turns[i], addresses, timeout)
            turns[i] += 1
            following = schedules[i].after(at, status, retry_after)
            if following is not None:
                heapq.heappush(events, (following, i))
    finally:
        for row in connections:
            for connection in row:
                if connection is not None:
                    connection.close()
    return LoadResult(results, duration, virtual=True)


def token_bucket_bound(capacity: int, refill_rate: float, duration: float) -> float:
    """The most a token bucket admits to one key in ``duration`` s: ``capacity + rate * T``."""
    return capacity + refill_rate * duration


def load_figure(result: LoadResult, *, bound: float | None = None, title: str | None = None):
    """Admitted and rejected requests per client (log scale), with the per-key ``bound``."""
    from sysdesign.figures import COLORS, new_figure

    names = [f"{c.name}<br>({c.behaviour})" for c in result.clients]
    data = [
        dict(
            type="bar",
            name="200 admitted",
            x=names,
            y=[c.admitted for c in result.clients],
            marker=dict(color=COLORS[2]),
        ),
        dict(
            type="bar",
            name="429 rejected",
            x=names,
            y=[c.rejected for c in result.clients],
            marker=dict(color=COLORS[3]),
        ),
    ]
    layout = {}
    if bound is not None:  # a dashed line across the plot, labelled at its left end
        layout["shapes"] = [
            dict(type="line", xref="paper", x0=0, x1=1, y0=bound, y1=bound,
                 line=dict(color="#444", dash="dash"))
        ]  # fmt: skip
        layout["annotations"] = [
            dict(xref="paper", x=0, y=math.log10(bound), text=f"most one key can get: {bound:g}",
                 showarrow=False, xanchor="left", yanchor="bottom")
        ]  # fmt: skip
    top = max([c.admitted for c in result.clients] + [c.rejected for c in result.clients] + [1])
    kind = "virtual" if result.virtual else "real"
    return new_figure(
        title or f"Answers per client ({result.duration:g} s of {kind} time)",
        data=data,
        barmode="group",
        # Bars start at 1 request; a log axis shows 9 rejections next to 900.
        yaxis=dict(type="log", title="requests (log scale)", range=[0, math.log10(top) + 0.25]),
        legend=dict(orientation="h", y=-0.25),
        height=400,
        **layout,
    )
