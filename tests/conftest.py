"""Shared fixtures: a throwaway real Redis server for the tests that need one."""

from __future__ import annotations

import os

import pytest

from sysdesign.store import RedisServer, redis_server_path


def on_ci() -> bool:
    """CI sets ``CI=true``: there a missing tool is a failure, never a silent skip."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def require_binary(found: bool, what: str, apt_package: str) -> None:
    """Skip (locally) or fail (under CI) when a system tool the test needs is missing."""
    if found:
        return
    message = f"{what} is not installed (apt-get install {apt_package})"
    if on_ci():
        pytest.fail(f"{message}, but CI=true: .ci/run must install it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_binary() -> str:
    """The path of ``redis-server`` (skipped locally / failed under CI when missing)."""
    path = redis_server_path()
    require_binary(path is not None, "redis-server", "redis-server")
    return path


@pytest.fixture(scope="session")
def redis_server(redis_binary):
    """A real ``redis-server`` on a free loopback port, no persistence, stopped afterwards."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_client(redis_server):
    """A client of the throwaway server, on an empty database."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()
