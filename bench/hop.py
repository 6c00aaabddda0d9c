"""Benchmark 2: the bare bus hop with a stand-in handler, against PING and asyncio.Queue.

One round trip is submit → XREADGROUP → handler → XADD reply + XACK → XREAD → routed to
the waiting request: two stream hops, so a hop is half a round trip. Series are measured
one request in flight at a time, in interleaved blocks so noise hits them all alike.
"""

import asyncio
import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from redis.exceptions import ResponseError

from bench import paths, pieces, standin
from bench.paths import RAW_FLAGS, TIMEOUT_S, Series, Trip
from bench.stack import Stack, cpu_s, wait_until
from services.gateway.bridge import Bridge
from services.gateway.metrics import gateway_metrics
from shared import bus
from shared.messages import TranscribeRequest
from shared.metrics import worker_metrics
from shared.settings import WorkerSettings
from shared.worker import run_worker

SUBPROCESS, LOCAL, BURST = "sub", "local", "burst"
Key = tuple[int, str]  # (payload bytes, path name)


@dataclass(frozen=True)
class HopConfig:
    requests: int  # sequential round trips per series and payload
    warmup: int
    throughput_requests: int
    block: int = 100  # round trips of one series before moving to the next
    requesters: int = 16
    worker_concurrency: int = 8
    payloads_bytes: tuple[int, ...] = (1_024, 65_536)


@dataclass(frozen=True)
class PayloadResult:
    payload_bytes: int
    entry_bytes: int
    series: dict[str, Series]


@dataclass(frozen=True)
class Throughput:
    payload_bytes: int
    wall_s: float
    latencies: list[float]
    cpu_s: dict[str, float]  # CPU seconds each process used during the measured burst


@dataclass(frozen=True)
class HopResult:
    config: HopConfig
    sequential: list[PayloadResult]
    throughput: list[Throughput]
    consumer_cpu_s: dict[str, float]  # CPU seconds per job of each stand-in consumer process
    # payload bytes -> piece -> seconds per call, timed alone in this process
    pieces: dict[int, dict[str, list[float]]] = field(default_factory=dict)


def _progress(message: str) -> None:
    print(f"bench bus: {message}", file=sys.stderr, flush=True)


def _payload(size: int) -> TranscribeRequest:
    return TranscribeRequest(audio=bytes(size))


async def _interleaved(trips: dict[Key, Trip], config: HopConfig) -> dict[Key, Series]:
    """Warm each path up, then run blocks of each in rotating order."""
    for trip in trips.values():
        scratch = Series()
        for _ in range(config.warmup):
            await trip(scratch)
    results = {name: Series() for name in trips}
    names = list(trips)
    blocks = max(1, config.requests // config.block)
    for index in range(blocks):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            for _ in range(config.requests // blocks):
                await trips[name](results[name])
    return results


async def _throughput(
    bridge: Bridge, payload: TranscribeRequest, config: HopConfig, pids: dict[str, int]
) -> Throughput:
    """``config.requesters`` tasks sharing one Bridge, each with one request in flight."""
    stream = standin.stream(BURST)

    async def drive(total: int, latencies: list[float]) -> float:
        remaining = total

        async def requester() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                await bridge.request(stream, bridge.job(payload, TIMEOUT_S), "standin", TIMEOUT_S)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(requester() for _ in range(config.requesters)))
        return time.perf_counter() - started

    await drive(max(config.requesters * 4, config.throughput_requests // 10), [])
    latencies: list[float] = []
    before = {name: cpu_s(pid) for name, pid in pids.items()}
    wall_s = await drive(config.throughput_requests, latencies)
    used = {name: cpu_s(pid) - before[name] for name, pid in pids.items()}
    return Throughput(len(payload.audio), wall_s, latencies, used)


@contextlib.asynccontextmanager
async def _local_worker(url: str) -> AsyncIterator[None]:
    """A stand-in ``run_worker`` loop as a task in this event loop."""
    client, stop = bus.client(url), asyncio.Event()
    settings = WorkerSettings(redis_url=url, worker_name="standin-local")
    metrics = worker_metrics(CollectorRegistry())
    task = asyncio.create_task(run_worker(client, standin.spec(LOCAL), settings, metrics, stop))
    try:
        for _ in range(200):
            with contextlib.suppress(ResponseError):
                if await client.xinfo_groups(standin.stream(LOCAL)):
                    break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("the in-process stand-in worker did not start")
        yield
    finally:
        stop.set()
        await task
        await client.aclose()


def _trips(
    config: HopConfig,
    client: aioredis.Redis,
    bridge: Bridge,
    sock: paths.SocketPing,
    echo: paths.QueueEcho,
) -> tuple[dict[Key, Trip], dict[int, int]]:
    """Every path for every payload, and each payload's entry size on the wire."""
    trips: dict[Key, Trip] = {}
    entry_bytes = {}
    for size in config.payloads_bytes:
        payload = _payload(size)
        raw_paths = [paths.RawPath(client, name, payload) for name in RAW_FLAGS]
        entry_bytes[size] = len(raw_paths[0].data)
        trips[size, "socket"] = sock.trip
        trips[size, "ping"] = partial(paths.ping, client)
        trips[size, "queue"] = partial(echo.trip, payload)
        trips.update({(size, path.name): path.trip for path in raw_paths})
        for name in (SUBPROCESS, LOCAL):
            trips[size, name] = partial(paths.bus_trip, bridge, standin.stream(name), payload)
    return trips, entry_bytes


async def _sequential(
    config: HopConfig, trips: dict[Key, Trip], consumers: dict[str, int]
) -> tuple[dict[Key, Series], dict[str, float]]:
    """The interleaved series, and each consumer process's CPU seconds per job."""
    _progress(f"{config.requests} round trips on each of {len(trips)} paths")
    before = {name: cpu_s(pid) for name, pid in consumers.items()}
    series = await _interleaved(trips, config)
    per_job = {}
    for name, pid in consumers.items():
        jobs = sum(len(v.samples) + config.warmup for (_, n), v in series.items() if n == name)
        per_job[name] = (cpu_s(pid) - before[name]) / jobs
    return series, per_job


async def _measure(
    config: HopConfig, url: str, pids: dict[str, int], consumers: dict[str, int]
) -> HopResult:
    client = bus.client(url)
    bridge = Bridge(client, "bench", gateway_metrics(CollectorRegistry()))
    await bridge.start()
    sock, echo = paths.SocketPing(url), paths.QueueEcho()
    try:
        async with _local_worker(url):
            trips, entry_bytes = _trips(config, client, bridge, sock, echo)
            series, per_job = await _sequential(config, trips, consumers)
        sequential = [
            PayloadResult(
                size, entry_bytes[size], {n: v for (z, n), v in series.items() if z == size}
            )
            for size in config.payloads_bytes
        ]
        throughput = []
        for size in config.payloads_bytes:
            _progress(f"{size:,} B payload: throughput, {config.throughput_requests} requests")
            throughput.append(await _throughput(bridge, _payload(size), config, pids))
        return HopResult(config, sequential, throughput, per_job)
    finally:
        sock.close()
        echo.task.cancel()
        await bridge.stop()
        await client.aclose()


def _groups_ready(url: str, names: list[str]) -> bool:
    """True once every consumer has created its group (it reads from the group's start, so
    a job added from then on reaches it; Redis 7.0 lists a consumer only after a delivery)."""
    client = redis.Redis.from_url(url)
    try:
        return all(client.xinfo_groups(standin.stream(n)) for n in names)
    except redis.ResponseError:
        return False
    finally:
        client.close()


def run(config: HopConfig) -> HopResult:
    """Time the pieces alone, start Redis and the stand-in consumers, measure every path."""
    _progress("timing the pieces of a round trip alone")
    alone = {size: pieces.measure(size) for size in config.payloads_bytes}
    with Stack() as stack:
        children = [
            stack.spawn(name, ["-m", "bench.standin", "--name", name, *args])
            for name, args in (
                (SUBPROCESS, []),
                (BURST, ["--concurrency", str(config.worker_concurrency)]),
                *((raw, ["--raw", *flags]) for raw, flags in RAW_FLAGS.items()),
            )
        ]
        names = [SUBPROCESS, BURST, *RAW_FLAGS]
        wait_until(lambda: _groups_ready(stack.redis_url, names), children, 60)
        pids = {
            "requester (bench process)": os.getpid(),
            "worker": children[1].popen.pid,
            "redis-server": stack.redis_pid,
        }
        consumers = {child.name: child.popen.pid for child in children if child.name != BURST}
        result = asyncio.run(_measure(config, stack.redis_url, pids, consumers))
    return dataclasses.replace(result, pieces=alone)
