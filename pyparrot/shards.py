"""The shards of a Redis Cluster as ``pyparrot status`` shows them: each primary with its slot
ranges, replicas, key count and health, and the job streams whose slot it owns."""

from typing import Any

import redis
from rich.table import Table

from pyparrot.redis_server import UNREACHABLE
from shared import bus, streams

Shard = dict[str, Any]  # JSON-ready: `status --json` prints it as it is


def describe(url: str) -> list[Shard]:
    """Every primary of the cluster at ``url``, in slot order, with the job streams it holds."""
    client = bus.sync_client(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        view: dict[str, dict[str, Any]] = client.cluster_nodes()  # parsed by redis-py
        _seeds, options = bus.cluster_seeds(url)
        shards = [_shard(address, node, view, options) for address, node in view.items()]
        shards = sorted((s for s in shards if s is not None), key=lambda s: s["slots"] or [[0]])
        for key in client.scan_iter(match=streams.JOBS_PATTERN, _type="stream", count=500):
            name = key.decode(errors="replace")
            if name.endswith(streams.dead("")):
                continue  # a dead-letter stream shares its job stream's hash tag, so its shard
            slot = int(client.keyslot(key))
            owner = next((s for s in shards if _owns(s, slot)), None)
            if owner is not None:
                owner["streams"].append({"stream": name, "slot": slot})
    finally:
        client.close()
    for shard in shards:
        shard["streams"].sort(key=lambda s: s["stream"])
    return shards


def _shard(
    address: str, node: dict[str, Any], view: dict[str, dict[str, Any]], options: dict[str, Any]
) -> Shard | None:
    """One primary's row, or None for a replica (it is listed under its primary)."""
    if "master" not in node["flags"]:
        return None
    replicas = [
        {"address": a, **_health(a, n, options)}
        for a, n in sorted(view.items())
        if n["master_id"] == node["node_id"]
    ]
    slots = [[int(r[0]), int(r[-1])] for r in node["slots"]]  # a lone slot is [n]
    health = _health(address, node, options)
    return {"primary": address, "slots": slots, **health, "replicas": replicas, "streams": []}


def _health(address: str, node: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Up (it answers, and the cluster does not think it failed) and its key count."""
    host, _, port = address.rpartition(":")
    timeouts = {"socket_connect_timeout": 1, "socket_timeout": 2}
    try:
        with redis.Redis(host, int(port), **timeouts, **options) as one:
            keys: int | None = int(one.dbsize())
    except UNREACHABLE:
        keys = None
    return {"up": keys is not None and "fail" not in node["flags"], "keys": keys}


def _owns(shard: Shard, slot: int) -> bool:
    return any(low <= slot <= high for low, high in shard["slots"])


def tables(shards: list[Shard]) -> list[Table]:
    """The shards, then the job streams with the shard that holds each."""
    st = Table(title=f"redis cluster: {len(shards)} shard(s)")
    for col in ("primary", "slots", "replicas", "keys", "state"):
        st.add_column(col)
    for shard in shards:
        slots = ", ".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in shard["slots"])
        replicas = ", ".join(
            f"{r['address']} ({'up' if r['up'] else 'down'})" for r in shard["replicas"]
        )
        keys = "?" if shard["keys"] is None else str(shard["keys"])
        state = "[green]up[/green]" if shard["up"] else "[red]down[/red]"
        st.add_row(shard["primary"], slots or "none", replicas or "none", keys, state)
    jt = Table(title="job streams by shard")
    for col in ("stream", "slot", "shard"):
        jt.add_column(col)
    for shard in shards:
        for row in shard["streams"]:
            jt.add_row(row["stream"], str(row["slot"]), shard["primary"])
    return [st, jt]
