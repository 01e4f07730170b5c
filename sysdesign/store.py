"""Where the course keeps its Redis: embedded by default, a real server on demand.

``connect()`` returns a client for the embedded fakeredis (with Lua scripting), shared
by every client in the process just as a real server is shared, unless the environment
variable ``REDIS_URL`` names a real server (``redis://localhost:6379/0``).

``RedisServer`` starts a throwaway ``redis-server`` on a free loopback port, without
persistence, for tests and for notebooks that want a real server; it stops the server on
exit, and the server also dies with the Python process that started it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

REDIS_URL_ENV = "REDIS_URL"

_START_HINT = (
    "Start a server, e.g. `redis-server --port 6379` (Debian/Ubuntu: `apt install "
    "redis-server`; conda: `conda install -c conda-forge redis-server`), or unset "
    f"{REDIS_URL_ENV} to use the course's embedded Redis (fakeredis)."
)


class RedisUnavailable(ConnectionError):
    """The Redis server named by ``REDIS_URL`` (or passed to ``connect``) cannot be reached."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback: one clear message.
        return [f"RedisUnavailable: {self}"]


_embedded_server = None


def _embedded():
    global _embedded_server
    if _embedded_server is None:
        import fakeredis

        _embedded_server = fakeredis.FakeServer()
    return _embedded_server


def connect(url: str | None = None, *, decode_responses: bool = True) -> redis.Redis:
    """A Redis client: the embedded fakeredis, or the real server at ``url`` / ``$REDIS_URL``.

    The embedded store supports Lua scripts (``EVAL``, ``register_script``) and is shared
    by all clients in this process, so two "app servers" in one notebook see one Redis.
    A real server is pinged first; if it does not answer, ``RedisUnavailable`` says what
    was tried and how to fix it.
    """
    url = url if url is not None else os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        import fakeredis

        return fakeredis.FakeRedis(server=_embedded(), decode_responses=decode_responses)
    source = (
        "the url passed to connect()" if url != os.environ.get(REDIS_URL_ENV) else REDIS_URL_ENV
    )
    try:
        client = redis.Redis.from_url(
            url, decode_responses=decode_responses, socket_connect_timeout=2, socket_timeout=5
        )
    except ValueError as exc:
        raise RedisUnavailable(
            f"{source} is not a Redis URL: {url!r} ({exc}). "
            "Use the form redis://HOST:PORT/DB, e.g. redis://localhost:6379/0."
        ) from None
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        client.close()
        raise RedisUnavailable(
            f"could not reach Redis at {url} (from {source}): {exc}. {_START_HINT}"
        ) from None
    return client


def is_embedded(client: redis.Redis) -> bool:
    """True for the embedded fakeredis, False for a client of a real server."""
    return type(client).__module__.startswith("fakeredis")


def describe(client: redis.Redis) -> str:
    """One line saying which Redis a client talks to."""
    if is_embedded(client):
        return "embedded Redis (fakeredis, in this Python process)"
    kwargs = client.connection_pool.connection_kwargs
    where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
    version = client.info("server").get("redis_version", "?")
    return f"Redis {version} at {where}"


# --- a throwaway real server ---------------------------------------------------------


def redis_server_path() -> str | None:
    """Path of the ``redis-server`` binary, or None when it is not installed."""
    return shutil.which("redis-server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM this child when the process that started it dies."""
    os.setpgrp()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


_running: set[RedisServer] = set()


class RedisServer:
    """A ``redis-server`` on a free loopback port, with no persistence, for one run.

    >>> with RedisServer() as server:          # doctest: +SKIP
    ...     r = server.client()
    ...     r.ping()

    ``extra_args`` go to redis-server's command line (``["--cluster-enabled", "yes"]``).
    """

    def __init__(self, port: int | None = None, *, extra_args: list[str] | tuple = ()):
        self.requested_port = port
        self.port: int | None = None
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None
        self.dir: Path | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server is not running; call start() first")
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, *, decode_responses: bool = True) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=decode_responses)

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = redis_server_path()
        if binary is None:
            raise FileNotFoundError(f"redis-server is not installed. {_START_HINT}")
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between choosing and binding
            self.port = self.requested_port or free_port()
            self.dir = Path(tempfile.mkdtemp(prefix="sysdesign-redis-"))
            log = self.dir / "redis.log"
            cmd = [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.dir),
                "--logfile", str(log),
                "--daemonize", "no",
                *self.extra_args,
            ]  # fmt: skip
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
            _running.add(self)
            if self._wait_ready(timeout):
                return self
            last_error = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            self.stop()
            if self.requested_port:
                break
        raise RuntimeError(f"redis-server did not start: {last_error.strip() or 'no log'}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        client = self.client()
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except (redis.ConnectionError, redis.BusyLoadingError):
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        _running.discard(self)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running on port {self.port}" if self.process else "stopped"
        return f"<RedisServer {state}>"


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()
