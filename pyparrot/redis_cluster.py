"""A local Redis Cluster for development and tests, formed from plain ``redis-server``
processes with redis-py alone (no ``redis-cli --cluster``).

Each node listens on its own free loopback port, with its cluster bus on a second free port
(``cluster-port``): the default bus port, the client port + 10000, may be past 65535 or taken.
"""

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from pyparrot import procs, redis_server
from pyparrot.procs import Proc

SLOTS = 16384
HOST = "127.0.0.1"
Address = tuple[str, int]


class ClusterError(RuntimeError):
    """The local cluster did not form; the message says which node and what it reported."""


@dataclass(frozen=True)
class LocalCluster:
    procs: list[Proc]
    primaries: list[Address]
    replicas: dict[Address, list[Address]]  # primary -> its replicas
    url: str  # redis+cluster://host:port,... naming every primary as a seed


@dataclass(frozen=True)
class _Node:
    port: int
    bus_port: int
    proc: Proc


def slot_ranges(primaries: int) -> list[tuple[int, int]]:
    """The 16384 slots split evenly into ``primaries`` contiguous, inclusive ranges."""
    bounds = [SLOTS * i // primaries for i in range(primaries + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(primaries)]


def start(
    primaries: int,
    logs_dir: Path,
    data_dir: Path,
    replicas: int = 0,
    node_timeout_ms: int = 2000,
    timeout_s: float = 30.0,
    persist: bool = False,
) -> LocalCluster:
    """Start ``primaries`` primaries with ``replicas`` replicas each and form a cluster; wait
    until every node reports it ok with the same slot map. With ``persist`` each node keeps an
    append-only file, so a restarted node comes back with its data."""
    if primaries < 1 or replicas < 0:
        raise ValueError(f"a cluster needs >= 1 primary and >= 0 replicas: {primaries}/{replicas}")
    nodes: list[_Node] = []
    try:
        for _ in range(primaries * (replicas + 1)):
            nodes.append(_spawn(len(nodes) + 1, logs_dir, data_dir, node_timeout_ms, persist))
        deadline = time.monotonic() + timeout_s
        for node in nodes:
            _wait(deadline, f"node {node.port} to answer", lambda n=node: _ping(n.port))
        cluster = _form(nodes[:primaries], nodes[primaries:], deadline)
    except BaseException:
        procs.stop([n.proc for n in nodes], timeout_s=10)
        raise
    return cluster


def stop(cluster: LocalCluster, timeout_s: float = 10.0) -> list[str]:
    """Stop every node; return the names of those that had to be killed."""
    return procs.stop(cluster.procs, timeout_s)


def _spawn(
    index: int, logs_dir: Path, data_dir: Path, node_timeout_ms: int, persist: bool
) -> _Node:
    port, bus_port = _free_ports()
    node_dir = data_dir / f"node-{port}"
    # A nodes.conf left by an earlier cluster on this port would make the node rejoin it.
    shutil.rmtree(node_dir, ignore_errors=True)
    node_dir.mkdir(parents=True)
    cmd = [
        redis_server.binary(),
        *("--port", str(port), "--bind", HOST, "--protected-mode", "yes"),
        *("--cluster-enabled", "yes", "--cluster-port", str(bus_port)),
        *("--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(node_timeout_ms)),
        *("--appendonly", "yes" if persist else "no", "--save", "", "--dir", str(node_dir)),
        # A replica's first sync starts at once, not after the default pause that waits for
        # more replicas to share one transfer.
        *("--repl-diskless-sync-delay", "0"),
        # CLUSTER SLOTS lists a replica only once its offset has moved; on an idle primary
        # only these pings move it.
        *("--repl-ping-replica-period", "1"),
        # A replica takes over however long it was cut off from its primary: with the
        # default factor a replica of a primary that went quiet declines the failover.
        *("--cluster-replica-validity-factor", "0"),
    ]
    return _Node(port, bus_port, procs.spawn(f"redis-{index}", cmd, {}, logs_dir))


def _free_ports() -> tuple[int, int]:
    port = redis_server.free_port()
    bus_port = redis_server.free_port()
    while bus_port == port:
        bus_port = redis_server.free_port()
    return port, bus_port


def _connect(port: int) -> redis.Redis:
    return redis.Redis(HOST, port, socket_connect_timeout=1, socket_timeout=5)


def _ping(port: int) -> bool:
    try:
        with _connect(port) as node:
            return bool(node.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _form(primaries: list[_Node], replicas: list[_Node], deadline: float) -> LocalCluster:
    """MEET, assign slots, attach replicas, then wait for every node to agree."""
    nodes = [*primaries, *replicas]
    with _connect(nodes[0].port) as first:
        for node in nodes[1:]:
            first.execute_command("CLUSTER MEET", HOST, node.port, node.bus_port)
    for node, (low, high) in zip(primaries, slot_ranges(len(primaries)), strict=True):
        with _connect(node.port) as client:
            client.execute_command("CLUSTER ADDSLOTSRANGE", low, high)
    _wait(deadline, "every node to know every other", lambda: _all_known(nodes))
    owners: dict[Address, list[Address]] = {(HOST, p.port): [] for p in primaries}
    for index, node in enumerate(replicas):
        primary = primaries[index % len(primaries)]
        with _connect(primary.port) as client:
            primary_id = client.execute_command("CLUSTER MYID").decode()
        with _connect(node.port) as client:
            client.execute_command("CLUSTER REPLICATE", primary_id)
        owners[(HOST, primary.port)].append((HOST, node.port))
    expected = _expected_map(primaries, owners)
    what = "every node to report cluster_state:ok and one slot map"
    _wait(deadline, what, lambda: all(_agrees(n.port, expected) for n in nodes))
    seeds = ",".join(f"{host}:{port}" for host, port in owners)
    return LocalCluster([n.proc for n in nodes], list(owners), owners, f"redis+cluster://{seeds}")


def _all_known(nodes: list[_Node]) -> bool:
    for node in nodes:
        with _connect(node.port) as client:
            known = client.execute_command("CLUSTER NODES").values()  # parsed by redis-py
        if sum("handshake" not in n["flags"] for n in known) < len(nodes):
            return False
    return True


def _expected_map(
    primaries: list[_Node], owners: dict[Address, list[Address]]
) -> set[tuple[int, int, int, tuple[int, ...]]]:
    """Each slot range with its primary's port and its replicas' ports, as CLUSTER SLOTS
    should show it."""
    ranges = slot_ranges(len(primaries))
    return {
        (low, high, node.port, tuple(sorted(p for _h, p in owners[(HOST, node.port)])))
        for node, (low, high) in zip(primaries, ranges, strict=True)
    }


def _agrees(port: int, expected: set[tuple[int, int, int, tuple[int, ...]]]) -> bool:
    """True if the node says the cluster is ok and its slot map (replicas included) is
    ``expected``; a replica must also have finished its first sync."""
    with _connect(port) as client:
        if client.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
            return False
        seen = {
            (int(row[0]), int(row[1]), int(row[2][1]), tuple(sorted(int(r[1]) for r in row[3:])))
            for row in client.execute_command("CLUSTER SLOTS")
        }
        replication = client.info("replication")
    synced = replication.get("role") == "master" or replication.get("master_link_status") == "up"
    return seen == expected and synced


def _wait(deadline: float, what: str, done: Callable[[], bool]) -> None:
    """Poll ``done`` until it is true; past ``deadline`` raise, saying what never happened."""
    last_error = ""
    while time.monotonic() < deadline:
        try:
            if done():
                return
        except redis.RedisError as exc:  # a node still starting or still handshaking
            last_error = f" (last error: {exc})"
        time.sleep(0.05)
    raise ClusterError(f"local Redis Cluster: timed out waiting for {what}{last_error}")
