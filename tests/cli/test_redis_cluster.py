"""A local Redis Cluster from Debian's redis-server (``pyparrot/redis_cluster.py``), and
``pyparrot status`` on one: each shard, and the job streams each holds."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from pyparrot import procs, redis_cluster
from pyparrot.redis_cluster import LocalCluster
from shared import bus

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
