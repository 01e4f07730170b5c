"""A throwaway 3-node Redis Cluster on loopback, for notebooks and tests.

Redis Cluster splits the key space into 16,384 *hash slots*: a key's slot is
``CRC16(key) mod 16384``, and each primary node serves a range of slots. If the key
contains a *hash tag*, ``{...}``, only the tag is hashed, so ``ratelimit:{user42}:second``
and ``ratelimit:{user42}:minute`` share a slot and one node, and a script or a
transaction may use both.

``LocalRedisCluster`` starts ``nodes`` (default 3) ``redis-server --cluster-enabled yes``
processes on free loopback ports (each a :class:`sysdesign.store.RedisServer`, with its
own temp dir, and dying with this Python process), gives each a third of the slots, and
joins them, then waits until every node says ``cluster_state:ok``::

    with LocalRedisCluster() as cluster:        # doctest: +SKIP
        rc = cluster.client()                   # a redis.cluster.RedisCluster
        rc.set("ratelimit:{user42}:second", 1)

It joins the nodes the way ``redis-cli --cluster create ... --cluster-replicas 0`` does,
either by running that command (``create_with="redis-cli"``) or by sending the same
commands from Python (``create_with="python"``: ``CLUSTER ADDSLOTSRANGE``, ``CLUSTER
MEET``); ``"auto"`` uses redis-cli when it is installed. On exit every process stops and
every temp dir is removed.
"""

from __future__ import annotations

import math
import re
import shutil
import socket
import subprocess
import time

import redis
from redis.cluster import RedisCluster

from sysdesign.store import RedisServer, free_port, redis_server_path

SLOTS = 16_384
CREATE_METHODS = ("auto", "redis-cli", "python")


def redis_cli_path() -> str | None:
    """Path of ``redis-cli``, or None when it is not installed."""
    return shutil.which("redis-cli")


def redis_server_version() -> tuple[int, ...] | None:
    """The installed ``redis-server``'s version, e.g. ``(7, 0, 15)``; None if not installed."""
    binary = redis_server_path()
    if binary is None:
        return None
    output = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10
    ).stdout
    found = re.search(r"v=(\d+)\.(\d+)\.(\d+)", output)
    return tuple(int(part) for part in found.groups()) if found else None


def slot_ranges(nodes: int) -> list[tuple[int, int]]:
    """The slots each node serves, first to last, split as ``redis-cli`` splits them:
    ``[(0, 5460), (5461, 10922), (10923, 16383)]`` for three nodes."""
    if isinstance(nodes, bool) or not isinstance(nodes, int) or not 1 <= nodes <= 16:
        raise ValueError(f"nodes must be a whole number from 1 to 16, got {nodes!r}")
    per_node = SLOTS / nodes
    ranges, first, cursor = [], 0, 0.0
    for index in range(nodes):
        last = math.floor(cursor + per_node - 1 + 0.5)  # C's lround, as in redis-cli
        if index == nodes - 1:
            last = SLOTS - 1
        ranges.append((first, last))
        first, cursor = last + 1, cursor + per_node
    return ranges


def key_slot(key: str) -> int:
    """``CLUSTER KEYSLOT key``, computed locally: CRC16 of the hash tag (or of the key)."""
    return redis.crc.key_slot(key.encode())


class LocalRedisCluster:
    """``nodes`` cluster-enabled ``redis-server`` processes on loopback, joined into one
    cluster with no replicas; a context manager, like :class:`sysdesign.store.RedisServer`.
    """

    def __init__(self, nodes: int = 3, *, create_with: str = "auto"):
        self.slot_ranges = slot_ranges(nodes)
        if create_with not in CREATE_METHODS:
            raise ValueError(f"create_with must be one of {CREATE_METHODS}, got {create_with!r}")
        if create_with == "redis-cli" and nodes < 3:
            raise ValueError(
                f"redis-cli --cluster create needs nodes >= 3, got {nodes}; "
                "use create_with='python'"
            )
        self.nodes = nodes
        self.create_with = create_with
        self.servers: list[RedisServer] = []
        self._clients: list[RedisCluster] = []

    # --- starting ------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> LocalRedisCluster:
        if redis_server_path() is None:
            raise FileNotFoundError(
                "redis-server is not installed (Debian/Ubuntu: apt install redis-server; "
                "conda: conda install -c conda-forge redis-server)"
            )
        if self.servers:
            raise RuntimeError("the cluster is already running")
        method = self.create_with
        if method == "auto":  # redis-cli refuses to create a cluster of fewer than 3
            method = "redis-cli" if redis_cli_path() and self.nodes >= 3 else "python"
        elif method == "redis-cli" and redis_cli_path() is None:
            raise FileNotFoundError("redis-cli is not installed; use create_with='python'")
        try:
            self._start_nodes()
            if method == "redis-cli":
                self._create_with_redis_cli(timeout)
            else:
                self._create_with_python()
            self._wait_until_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_nodes(self) -> None:
        # Each node also listens on a cluster bus port (node-to-node gossip). Redis 7
        # lets us choose it (--cluster-port); before 7 it is always port + 10000.
        version = redis_server_version() or (0,)
        for _ in range(self.nodes):
            for attempt in range(5):  # a free port can be taken before the server binds it
                if version >= (7,):
                    args = ["--cluster-port", str(free_port())]
                    server = RedisServer(extra_args=self._node_args() + args)
                else:
                    server = RedisServer(_port_with_free_bus_port(), extra_args=self._node_args())
                try:
                    server.start()
                    break
                except RuntimeError:
                    if attempt == 4:
                        raise
            self.servers.append(server)

    @staticmethod
    def _node_args() -> list[str]:
        return [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",  # in the server's temp dir
            "--cluster-node-timeout", "5000",
        ]  # fmt: skip

    def _create_with_redis_cli(self, timeout: float) -> None:
        addresses = [f"127.0.0.1:{server.port}" for server in self.servers]
        command = [redis_cli_path(), "--cluster", "create", *addresses]
        command += ["--cluster-replicas", "0", "--cluster-yes"]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if result.returncode != 0 or "[OK]" not in result.stdout:
            raise RuntimeError(
                f"redis-cli --cluster create failed:\n{(result.stdout + result.stderr)[-2000:]}"
            )

    def _create_with_python(self) -> None:
        """What ``redis-cli --cluster create`` does: slots to each node, a distinct config
        epoch each, then every node meets the first (gossip tells the rest)."""
        clients = self.node_clients()
        try:
            version = redis_server_version() or (0,)
            for epoch, (client, (first, last)) in enumerate(
                zip(clients, self.slot_ranges, strict=True), start=1
            ):
                if version >= (7,):
                    client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
                else:
                    client.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
            first_server = self.servers[0]
            meet = ["CLUSTER", "MEET", "127.0.0.1", first_server.port]
            if version >= (7,):
                meet.append(_bus_port(first_server))
            for client in clients[1:]:
                client.execute_command(*meet)
        finally:
            for client in clients:
                client.close()

    def _wait_until_ok(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        clients = self.node_clients()
        try:
            while True:
                infos = [client.cluster("info") for client in clients]
                if all(
                    info.get("cluster_state") == "ok"
                    and int(info.get("cluster_known_nodes", 0)) == self.nodes
                    and int(info.get("cluster_slots_ok", 0)) == SLOTS
                    for info in infos
                ) and self._all_nodes_agree_on_slots(clients):
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the cluster did not become ok in {timeout} s: {infos}")
                time.sleep(0.05)
        finally:
            for client in clients:
                client.close()

    def _all_nodes_agree_on_slots(self, clients) -> bool:
        expected = sorted(
            (first, last, server.port)
            for (first, last), server in zip(self.slot_ranges, self.servers, strict=True)
        )
        for client in clients:
            seen = sorted(
                (first, last, node[1])
                for first, last, node, *_ in client.execute_command("CLUSTER", "SLOTS")
            )
            if seen != expected:
                return False
        return True

    # --- using ---------------------------------------------------------------------

    def client(self, *, decode_responses: bool = True) -> RedisCluster:
        """A ``redis.cluster.RedisCluster`` client: it learns the slot map and sends each
        command to the node serving its key's slot. Closed by ``stop()``."""
        if not self.servers:
            raise RuntimeError("the cluster is not running; call start() first")
        client = RedisCluster(
            host="127.0.0.1", port=self.servers[0].port, decode_responses=decode_responses
        )
        self._clients.append(client)
        return client

    def node_clients(self, *, decode_responses: bool = True) -> list[redis.Redis]:
        """A plain client of each node, in slot order (node 0 serves slots 0-5460...)."""
        return [server.client(decode_responses=decode_responses) for server in self.servers]

    def node_of_slot(self, slot: int) -> int:
        """Which node (0, 1, 2...) serves ``slot``."""
        for index, (first, last) in enumerate(self.slot_ranges):
            if first <= slot <= last:
                return index
        raise ValueError(f"slot must be a whole number from 0 to {SLOTS - 1}, got {slot!r}")

    def node_of_key(self, key: str) -> int:
        """Which node (0, 1, 2...) holds ``key``."""
        return self.node_of_slot(key_slot(key))

    @property
    def pids(self) -> list[int]:
        return [server.process.pid for server in self.servers if server.process]

    # --- stopping ------------------------------------------------------------------

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        for server in self.servers:
            server.stop()
        self.servers = []

    def __enter__(self) -> LocalRedisCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.servers else "stopped"
        return f"<LocalRedisCluster of {self.nodes} nodes, {state}>"


def _bus_port(server: RedisServer) -> int:
    args = server.extra_args
    if "--cluster-port" in args:
        return int(args[args.index("--cluster-port") + 1])
    return server.port + 10_000


def _port_with_free_bus_port() -> int:
    """Before Redis 7 the bus port is port + 10000: find a port where both are free."""
    for _ in range(100):
        port = free_port()
        if port + 10_000 > 65_535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        return port
    raise RuntimeError("found no free port whose port + 10000 is free too")
