"""Benchmark: the bus on one Redis against a Redis Cluster of 3 primaries,
``python -m bench --only cluster [--quick]``.

Stand-in workers (the real ``shared.worker`` loop, ``bench.standin``), one process per
target, answer at once; the bench process submits through the gateway's own ``Bridge``. In
one run:

- round trip with one request in flight, in interleaved blocks so noise hits every target
  alike: one Redis and the cluster, each with one stream and with the variant split over 3
  streams (``STREAM_PARTS``);
- throughput with many requests in flight, on the same four targets;
- per shard, during each throughput phase: Redis commands (INFO commandstats) per job and
  their share of the cluster's, and redis-server CPU seconds, which is what says how the
  ceiling grows with shards on machines with more cores than these.
"""

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
from prometheus_client import CollectorRegistry

from bench import standin
from bench.stack import Stack, cpu_s, wait_until
from bench.stats import Summary
from pyparrot import redis_cluster
from services.gateway.bridge import Bridge
from services.gateway.metrics import gateway_metrics
from shared import bus, streams
from shared.messages import TranscribeRequest, Transcript

PARTS = 3
TIMEOUT_S = 30.0
PAYLOAD = TranscribeRequest(audio=b"\0\0" * 512)  # a 1 KiB job, as the bus benchmark's


@dataclass(frozen=True)
class ClusterConfig:
    requests: int  # sequential round trips per target
    warmup: int
    block: int  # round trips of one target before moving to the next
    in_flight: int  # requests kept in flight in the throughput phases
    measure_s: float
    worker_concurrency: int = 16


FULL = ClusterConfig(requests=2_000, warmup=200, block=100, in_flight=64, measure_s=8.0)
QUICK = ClusterConfig(requests=200, warmup=30, block=50, in_flight=32, measure_s=2.0)


@dataclass(frozen=True)
class Target:
    """One way to run the bus: where, and over how many streams the variant is spread."""

    name: str
    cluster: bool
    parts: int
    gateways: int = 1  # requesters' Bridges, each with its reply stream, as gateway replicas

    @property
    def variant(self) -> str:
        return f"{'cl' if self.cluster else 'one'}-{self.parts}-{self.gateways}"

    @property
    def split(self) -> dict[str, int]:
        return {streams.tag(standin.stream(self.variant)): self.parts}


TARGETS = (
    Target("1 Redis, 1 stream", False, 1),
    Target("1 Redis, 3 parts", False, PARTS),
    Target("cluster, 1 stream", True, 1),
    Target(f"cluster, {PARTS} parts", True, PARTS),
    Target(f"cluster, {PARTS} parts, {PARTS} gateways", True, PARTS, PARTS),
)
SEQUENTIAL = [t for t in TARGETS if t.gateways == 1]


@dataclass
class Shard:
    """One redis-server during a phase: its address, commands and CPU seconds."""

    address: str
    commands: int
    cpu_s: float


@dataclass
class Phase:
    target: Target
    jobs: int
    window_s: float
    shards: list[Shard]
    errors: int

    @property
    def jobs_s(self) -> float:
        return self.jobs / self.window_s


@dataclass
class ClusterResult:
    config: ClusterConfig
    round_trip: dict[str, Summary] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)


def _progress(message: str) -> None:
    print(f"bench cluster: {message}", file=sys.stderr, flush=True)


async def _trip(bridge: Bridge, target: Target) -> float:
    started = time.perf_counter()
    job = bridge.job(PAYLOAD, TIMEOUT_S)
    reply = await bridge.request(standin.stream(target.variant), job, "standin", TIMEOUT_S)
    if not isinstance(reply.payload, Transcript):
        raise RuntimeError(f"stand-in answered {reply.payload!r}")
    return time.perf_counter() - started


async def _round_trips(
    bridges: dict[str, list[Bridge]], config: ClusterConfig
) -> dict[str, Summary]:
    samples: dict[str, list[float]] = {t.name: [] for t in SEQUENTIAL}
    for target in SEQUENTIAL:
        for _ in range(config.warmup):
            await _trip(bridges[target.name][0], target)
    done = 0
    while done < config.requests:
        for target in SEQUENTIAL:
            for _ in range(min(config.block, config.requests - done)):
                samples[target.name].append(await _trip(bridges[target.name][0], target))
        done += config.block
    return {name: Summary.of(values) for name, values in samples.items()}


async def _flood(
    bridges: list[Bridge], target: Target, config: ClusterConfig
) -> tuple[int, int, float]:
    """Jobs answered and errors in ``measure_s`` with ``in_flight`` requests kept going,
    shared evenly by ``bridges``."""
    answered = errors = 0
    stop_at = time.monotonic() + config.measure_s

    async def requester(bridge: Bridge) -> None:
        nonlocal answered, errors
        while time.monotonic() < stop_at:
            try:
                await _trip(bridge, target)
                answered += 1
            except Exception:  # noqa: BLE001 (counted and reported, never hidden)
                errors += 1

    started = time.monotonic()
    chosen = [bridges[i % len(bridges)] for i in range(config.in_flight)]
    await asyncio.gather(*(requester(bridge) for bridge in chosen))
    return answered, errors, time.monotonic() - started


def _counts(nodes: dict[str, int]) -> dict[str, tuple[int, float]]:
    """Each node's total command calls and CPU seconds so far."""
    counts = {}
    for address, pid in nodes.items():
        host, port = address.rsplit(":", 1)
        with redis.Redis(host, int(port)) as client:
            stats = client.info("commandstats")
        calls = sum(int(v["calls"]) for k, v in stats.items() if not k.endswith(("_info",)))
        counts[address] = (calls, cpu_s(pid))
    return counts


async def _phases(
    bridges: dict[str, list[Bridge]], nodes: dict[bool, dict[str, int]], config: ClusterConfig
) -> list[Phase]:
    phases = []
    for target in TARGETS:
        _progress(f"throughput: {target.name}, {config.in_flight} in flight")
        await _flood(bridges[target.name], target, ClusterConfig(0, 0, 1, 8, 0.5))  # warm-up
        before = _counts(nodes[target.cluster])
        jobs, errors, window_s = await _flood(bridges[target.name], target, config)
        after = _counts(nodes[target.cluster])
        shards = [Shard(a, after[a][0] - before[a][0], after[a][1] - before[a][1]) for a in before]
        phases.append(Phase(target, jobs, window_s, shards, errors))
    return phases


def _bridge(client: object, target: Target, n: int) -> Bridge:
    """The ``n``-th gateway's Bridge of ``target``: its own reply stream (whose shard its
    name decides)."""
    name = f"gateway-{n + 1}" if target.gateways > 1 else f"bench-{target.variant}"
    metrics = gateway_metrics(CollectorRegistry())
    return Bridge(client, name, metrics, split=target.split)  # type: ignore[arg-type]


async def _measure(urls: dict[bool, str], nodes: dict[bool, dict[str, int]],
                   config: ClusterConfig) -> ClusterResult:  # fmt: skip
    clients = {cluster: bus.client(url) for cluster, url in urls.items()}
    bridges = {t.name: [_bridge(clients[t.cluster], t, n) for n in range(t.gateways)]
               for t in TARGETS}  # fmt: skip
    everyone = [bridge for group in bridges.values() for bridge in group]
    for bridge in everyone:
        await bridge.start()
    try:
        _progress(f"{config.requests} round trips on each of {len(SEQUENTIAL)} targets")
        result = ClusterResult(config, await _round_trips(bridges, config))
        result.phases = await _phases(bridges, nodes, config)
        return result
    finally:
        for bridge in everyone:
            await bridge.stop()
        for client in clients.values():
            await client.aclose()


def _groups_ready(url: str, target: Target) -> bool:
    client = bus.sync_client(url)
    try:
        names = streams.parts(standin.stream(target.variant), target.parts)
        return all(client.xinfo_groups(name) for name in names)
    except redis.ResponseError:
        return False
    finally:
        client.close()


@contextmanager
def _cluster(stack: Stack) -> Iterator[redis_cluster.LocalCluster]:
    data = Path(stack.logs) / "cluster"
    cluster = redis_cluster.start(PARTS, Path(stack.logs), data)
    try:
        yield cluster
    finally:
        redis_cluster.stop(cluster)


def run(config: ClusterConfig) -> ClusterResult:
    """Start one Redis and a 3-primary cluster, a stand-in worker per target, measure."""
    with Stack() as stack, _cluster(stack) as cluster:
        urls = {False: stack.redis_url, True: cluster.url}
        single = stack.redis_url.removeprefix("redis://").split("/")[0]
        nodes = {
            False: {single: stack.redis_pid},
            True: {f"{h}:{p}": proc.pid for (h, p), proc in zip(cluster.primaries,
                                                                cluster.procs, strict=False)},
        }  # fmt: skip
        for target in TARGETS:
            env = {"REDIS_URL": urls[target.cluster], "STREAM_PARTS": json.dumps(target.split)}
            args = ["-m", "bench.standin", "--name", target.variant,
                    "--concurrency", str(config.worker_concurrency)]  # fmt: skip
            child = stack.spawn(f"standin-{target.variant}", args, env)
            wait_until(lambda t=target: _groups_ready(urls[t.cluster], t), [child], 60)
        return asyncio.run(_measure(urls, nodes, config))
