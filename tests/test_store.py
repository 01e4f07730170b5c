"""sysdesign.store: embedded fakeredis by default, a real server on demand, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sysdesign import store


def test_default_is_embedded_and_runs_lua(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    client = store.connect()
    assert store.is_embedded(client)
    assert "fakeredis" in store.describe(client)
    client.delete("k")
    assert client.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, "k", 5) == 5


def test_embedded_clients_share_one_server(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    a, b = store.connect(), store.connect()
    a.set("shared", "yes")
    assert b.get("shared") == "yes"


def test_unreachable_redis_url_gives_one_clear_message(monkeypatch):
    url = f"redis://127.0.0.1:{store.free_port()}/0"
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(store.RedisUnavailable) as info:
        store.connect()
    message = str(info.value)
    assert url in message and "REDIS_URL" in message
    assert "redis-server" in message and "unset REDIS_URL" in message
    assert info.value._render_traceback_() == [f"RedisUnavailable: {message}"]


def test_malformed_url_is_named(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "localhost:6379")
    with pytest.raises(store.RedisUnavailable, match="not a Redis URL: 'localhost:6379'"):
        store.connect()


def test_notebook_shows_message_not_traceback(tmp_path):
    """In IPython, an unreachable server prints one line, not a traceback wall."""
    code = "import sysdesign.store as s\ns.connect()\n"
    script = tmp_path / "cell.ipy"
    script.write_text(code)
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{store.free_port()}/0"}
    result = subprocess.run(
        [sys.executable, "-m", "IPython", "--colors=NoColor", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert "RedisUnavailable: could not reach Redis" in output
    assert "Traceback" not in output and "File " not in output


def test_real_server_via_redis_url(redis_server, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    client = store.connect()
    assert not store.is_embedded(client)
    assert store.describe(client).startswith("Redis ")
    assert client.eval("return 1 + 1", 0) == 2


def test_throwaway_server_stops_and_leaves_nothing(redis_binary):
    with store.RedisServer() as server:
        pid = server.process.pid
        directory = server.dir
        assert server.client().config_get("save") == {"save": ""}
    assert server.process is None and not directory.exists()
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read()
