"""A local Redis Cluster from Debian's redis-server (``pyparrot/redis_cluster.py``), and
``pyparrot status`` on one: each shard, and the job streams each holds."""

import json
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
from redis.cluster import key_slot

from pyparrot import procs, redis_cluster
from pyparrot.redis_cluster import LocalCluster
from pyparrot.redis_server import free_port
from shared import bus, streams
from tests.cli.helpers import cli_env, pyparrot

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    started = redis_cluster.start(3, workdir / "logs", workdir / "data")
    yield started
    redis_cluster.stop(started)


def nodes_view(port: int) -> dict[str, dict[str, object]]:
    """CLUSTER NODES as one node sees it, parsed by redis-py."""
    with redis.Redis("127.0.0.1", port) as node:
        return dict(node.execute_command("CLUSTER NODES"))


def test_slots_are_split_evenly_in_contiguous_ranges() -> None:
    assert redis_cluster.slot_ranges(3) == [(0, 5460), (5461, 10921), (10922, 16383)]
    assert redis_cluster.slot_ranges(1) == [(0, 16383)]


def test_three_primaries_serve_keys_of_every_slot_through_one_client(
    cluster: LocalCluster,
) -> None:
    assert len(cluster.primaries) == 3 and len(cluster.procs) == 3
    assert cluster.url == "redis+cluster://" + ",".join(
        f"127.0.0.1:{port}" for _host, port in cluster.primaries
    )
    client = bus.sync_client(cluster.url)
    try:
        keys = [f"k{i}" for i in range(30)]
        owners = {client.nodes_manager.get_node_from_slot(client.keyslot(k)).port for k in keys}
        assert owners == {port for _host, port in cluster.primaries}  # every shard holds some
        for i, key in enumerate(keys):
            client.set(key, i)
        assert [int(client.get(k)) for k in keys] == list(range(30))
        assert client.dbsize(target_nodes=redis.RedisCluster.PRIMARIES) == 30  # summed
    finally:
        client.close()


def test_each_primary_gets_its_replica_when_asked(tmp_path: Path) -> None:
    started = redis_cluster.start(3, tmp_path / "logs", tmp_path / "data", replicas=1)
    try:
        assert len(started.procs) == 6
        assert all(len(replicas) == 1 for replicas in started.replicas.values())
        view = nodes_view(started.primaries[0][1])
        ids = {address: node["node_id"] for address, node in view.items()}
        for (host, port), [(r_host, r_port)] in started.replicas.items():
            replica = view[f"{r_host}:{r_port}"]
            assert "slave" in str(replica["flags"])
            assert replica["master_id"] == ids[f"{host}:{port}"]
    finally:
        redis_cluster.stop(started)
    assert not any(procs.alive(p) for p in started.procs)


def test_stop_ends_every_node(tmp_path: Path) -> None:
    started = redis_cluster.start(2, tmp_path / "logs", tmp_path / "data")
    assert all(procs.alive(p) for p in started.procs)
    assert redis_cluster.stop(started) == []  # SIGTERM was enough
    assert not any(procs.alive(p) for p in started.procs)


def test_status_lists_the_shards_and_the_shard_of_each_job_stream(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    stream = streams.jobs("stt", "tiny.en")
    client = bus.sync_client(cluster.url)
    try:
        client.xgroup_create(stream, streams.group("stt"), id="0", mkstream=True)
    finally:
        client.close()
    slot = key_slot(stream.encode())
    ranges = redis_cluster.slot_ranges(3)
    owner = next(
        f"{h}:{p}"
        for (h, p), (lo, hi) in zip(cluster.primaries, ranges, strict=True)
        if lo <= slot <= hi
    )
    env = cli_env(tmp_path, cluster.url)

    report = pyparrot("status", "--json", env=env)
    assert report.returncode == 0, report.stderr
    shards = json.loads(report.stdout)["shards"]
    assert [s["primary"] for s in shards] == [f"{h}:{p}" for h, p in cluster.primaries]
    assert [s["slots"] for s in shards] == [[[lo, hi]] for lo, hi in ranges]
    assert all(s["up"] and s["replicas"] == [] for s in shards)
    holding = {s["primary"]: [row["stream"] for row in s["streams"]] for s in shards}
    assert holding[owner] == [stream]
    assert [name for names in holding.values() for name in names] == [stream]

    table = pyparrot("status", env=env)
    assert table.returncode == 0, table.stderr
    assert "redis cluster: 3 shard(s)" in table.stdout
    row = next(line for line in table.stdout.splitlines() if stream in line and owner in line)
    assert str(slot) in row


def test_up_starts_a_local_cluster_and_down_stops_it(tmp_path: Path) -> None:
    env = cli_env(tmp_path, f"redis://127.0.0.1:{free_port()}/0")  # REDIS_URL is not used
    port = str(free_port())
    up = pyparrot(
        "up", "--detach", "--redis-cluster", "2", "--workers", "", "--port", port, env=env
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads(pyparrot("status", "--json", env=env).stdout)
        nodes = [p for p in state["processes"] if p["name"].startswith("redis-")]
        assert [p["name"] for p in nodes] == ["redis-1", "redis-2"]
        assert all(p["alive"] for p in nodes) and state["redis"]["origin"] == "started"
        assert state["redis"]["url"].startswith("redis+cluster://127.0.0.1:")
        assert len(state["shards"]) == 2 and all(s["up"] for s in state["shards"])
    finally:
        assert pyparrot("down", env=env).returncode == 0
    assert not any(psutil.pid_exists(p["pid"]) and _is_redis(p["pid"]) for p in nodes)


def _is_redis(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and "redis" in process.name()
    except psutil.Error:
        return False
