"""sysdesign.cluster: a 3-node Redis Cluster on loopback starts, serves the package's
limiters unchanged, refuses cross-slot scripts, and stops leaving no process or temp dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis as redis_py
from redis.exceptions import ClusterCrossSlotError, RedisClusterException

from sysdesign import cluster as cl
from sysdesign.ratelimit import algorithms
from sysdesign.ratelimit import redis as rl_redis
from sysdesign.ratelimit.distributed import MultiWindowLimit, WatchFixedWindow
from sysdesign.ratelimit.traces import client_mix, replay

pytestmark = pytest.mark.redis_server


def redis_processes() -> dict[int, str]:
    """pid -> command line of every redis-server process (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split(") ", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if "redis-server" in cmdline and state != "Z":
            found[int(entry.name)] = cmdline
    return found


@pytest.fixture(scope="module")
def cluster(redis_binary):
    """One cluster for the module: redis-cli --cluster create when installed."""
    with cl.LocalRedisCluster() as running:
        yield running


@pytest.fixture
def rc(cluster):
    client = cluster.client()
    client.flushall()  # every primary
    return client


# --- starting and stopping ---------------------------------------------------------


def test_slot_ranges_split_like_redis_cli():
    assert cl.slot_ranges(3) == [(0, 5460), (5461, 10922), (10923, 16383)]
    assert cl.slot_ranges(1) == [(0, 16383)]
    for nodes in range(1, 17):
        ranges = cl.slot_ranges(nodes)
        assert ranges[0][0] == 0 and ranges[-1][1] == cl.SLOTS - 1
        assert all(a[1] + 1 == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    with pytest.raises(ValueError, match="nodes must be a whole number from 1 to 16, got 0"):
        cl.slot_ranges(0)
    with pytest.raises(ValueError, match="create_with must be one of"):
        cl.LocalRedisCluster(create_with="ansible")
    with pytest.raises(ValueError, match="redis-cli --cluster create needs nodes >= 3, got 2"):
        cl.LocalRedisCluster(2, create_with="redis-cli")


def test_three_nodes_each_serve_a_third_of_the_slots(cluster):
    assert len(cluster.servers) == 3
    for node in cluster.node_clients():
        info = node.cluster("info")
        assert info["cluster_state"] == "ok" and int(info["cluster_slots_ok"]) == cl.SLOTS
        assert int(info["cluster_known_nodes"]) == 3 and int(info["cluster_size"]) == 3
        node.close()
    assert [cluster.node_of_slot(s) for s in (0, 5460, 5461, 10922, 10923, 16383)] == [
        0, 0, 1, 1, 2, 2,
    ]  # fmt: skip


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")
def test_stops_leaving_no_process_and_no_temp_dir(redis_binary):
    """Joined from Python (CLUSTER ADDSLOTSRANGE, MEET); the module's other tests use
    redis-cli --cluster create when it is installed. Stopping is the same either way."""
    before = set(redis_processes())
    with cl.LocalRedisCluster(create_with="python") as running:
        pids, dirs = running.pids, [server.dir for server in running.servers]
        assert set(pids) == set(redis_processes()) - before
        assert all(d.is_dir() and (d / "nodes.conf").exists() for d in dirs)
        rc = running.client()
        assert rc.set("k", "v") and rc.get("k") == "v"
    assert not set(pids) & set(redis_processes())
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)  # reaped, not zombies
    assert not any(d.exists() for d in dirs)
    assert running.servers == [] and "stopped" in repr(running)


def test_a_failed_start_stops_what_it_started(redis_binary, monkeypatch):
    def never_ok(self, timeout):
        raise RuntimeError("the cluster did not become ok")

    monkeypatch.setattr(cl.LocalRedisCluster, "_wait_until_ok", never_ok)
    before = set(redis_processes())
    starting = cl.LocalRedisCluster(create_with="python")
    with pytest.raises(RuntimeError, match="did not become ok"):
        starting.start()
    assert set(redis_processes()) == before and starting.servers == []


def test_missing_redis_server_is_named(monkeypatch):
    monkeypatch.setattr(cl, "redis_server_path", lambda: None)
    with pytest.raises(FileNotFoundError, match="redis-server is not installed"):
        cl.LocalRedisCluster().start()


# --- slots and hash tags ------------------------------------------------------------


def test_hash_tagged_keys_share_the_slot_of_the_tag(rc):
    keys = ["ratelimit:{user42}:fixed_window", "ratelimit:{user42}:second", "{user42}"]
    slots = {rc.cluster_keyslot(key) for key in keys}
    assert slots == {cl.key_slot("user42")} == {cl.key_slot(key) for key in keys}
    assert rc.cluster_keyslot("ratelimit:user42:second") != rc.cluster_keyslot(
        "ratelimit:user42:minute"
    )


# --- the package's limiters, unchanged, on the cluster ---------------------------------


@pytest.mark.parametrize(
    "local_cls, redis_cls, params",
    [
        (algorithms.FixedWindow, rl_redis.RedisFixedWindow, {"limit": 3, "window": 1.0}),
        (algorithms.TokenBucket, rl_redis.RedisTokenBucket, {"capacity": 3, "refill_rate": 1.5}),
        (
            algorithms.SlidingWindowLog,
            rl_redis.RedisSlidingWindowLog,
            {"limit": 3, "window": 2.0},
        ),
    ],
)
def test_the_redis_limiters_run_unchanged_on_the_cluster(cluster, rc, local_cls, redis_cls, params):
    """The same decisions as the in-process twin; each client's key lives on the node
    that serves its hash tag's slot."""
    trace = client_mix(duration=10, burst_size=7, seed=3, start=50.0)
    shared = redis_cls(rc, **params, expiry_grace=60)
    assert replay(shared, trace) == replay(local_cls(**params), trace)
    nodes = cluster.node_clients()
    for client_key in {key for _, key in trace}:
        redis_key = shared.redis_key(client_key)
        holders = [i for i, node in enumerate(nodes) if redis_key in node.keys("*")]
        assert holders == [cluster.node_of_key(client_key)]
    for node in nodes:
        node.close()


def test_watch_limiter_works_on_one_slot(rc):
    limiter = WatchFixedWindow(rc, limit=2, window=60)
    assert [bool(limiter.allow("user42", 5.0)) for _ in range(3)] == [True, True, False]


def test_multi_key_script_needs_a_hash_tag(cluster, rc):
    """Keys of one decision in one slot: the script runs. In different slots: redis-py
    refuses to send it, and a node that gets it anyway answers CROSSSLOT."""
    tagged = MultiWindowLimit(rc, limits={1: 2, 60: 3})
    assert [tagged.allow("user42", 10.5) for _ in range(3)] == [True, True, False]
    untagged = MultiWindowLimit(rc, limits={1: 2, 60: 3}, hash_tag=False)
    with pytest.raises(RedisClusterException, match="all keys must map to the same key slot"):
        untagged.allow("user42", 10.5)
    keys = untagged.redis_keys("user42", 10.5)
    node = cluster.node_clients()[cluster.node_of_key(keys[0])]
    with pytest.raises(ClusterCrossSlotError, match="don't hash to the same slot"):
        node.eval(MultiWindowLimit.LUA, 2, *keys, 2, 2000, 3, 60_000)
    node.close()
    assert isinstance(ClusterCrossSlotError(), redis_py.ResponseError)


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")
def test_no_cluster_process_outlives_the_module(cluster):
    """The fixture's servers die with this Python process (PR_SET_PDEATHSIG) as well as
    on stop(); here: they are this process's children."""
    for pid in cluster.pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        assert int(stat.split(") ", 1)[1].split()[1]) == os.getpid()
