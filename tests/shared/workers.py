"""The stand-in job stream, handler and worker runs the consumer-group loop's tests share."""

import asyncio
import time
from collections.abc import Iterator

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from services.gateway.bridge import Bridge
from services.gateway.metrics import gateway_metrics
from shared import bus, streams
from shared.messages import (
    Envelope,
    TranscribeRequest,
    Transcript,
    unpack,
)
from shared.metrics import worker_metrics
from shared.settings import WorkerSettings
from shared.worker import Worker, WorkerSpec, run_worker

STREAM = streams.jobs("stt", "standin")
REPLIES = streams.replies("test")
GROUP = streams.group("stt")


def settings(url: str, **overrides: object) -> WorkerSettings:
    base: dict[str, object] = dict(
        redis_url=url,
        worker_name="w1",
        claim_idle_ms=100,
        block_ms=50,
        max_deliveries=3,
        heartbeat_interval_s=0.05,
        shutdown_grace_s=5,
    )
    return WorkerSettings(**{**base, **overrides})  # type: ignore[arg-type]


def job(n_samples: int = 160, **kw: object) -> Envelope:
    return Envelope(
        payload=TranscribeRequest(audio=b"\x00\x00" * n_samples), reply_to=REPLIES, **kw
    )


def echo_length(envelope: Envelope) -> Iterator[Transcript]:
    """Stand-in handler: reports how many audio bytes it got."""
    audio = envelope.payload.audio  # type: ignore[union-attr]
    yield Transcript(text=str(len(audio)), language="en", duration_s=0.0)


def spec(handle=echo_length) -> WorkerSpec:  # type: ignore[no-untyped-def]
    return WorkerSpec(
        component="stt", stream=STREAM, handle=handle, model="standin", languages=["en"]
    )


async def replies(redis: aioredis.Redis) -> list[Envelope]:
    return [unpack(fields[b"e"]) for _id, fields in await redis.xrange(REPLIES)]


async def submit_all(redis: aioredis.Redis, jobs: list[Envelope]) -> None:
    await bus.ensure_group(redis, STREAM, GROUP)
    for j in jobs:
        await bus.submit(redis, STREAM, j)


async def run_until(
    redis: aioredis.Redis,
    cfg: WorkerSettings,
    worker_spec: WorkerSpec,
    done: "asyncio.Future[object] | None" = None,
    predicate=None,
    registry: CollectorRegistry | None = None,
    timeout_s: float = 10,
) -> None:  # type: ignore[no-untyped-def]
    """Run a non-burst worker until ``predicate(redis)`` holds, then stop it gracefully."""
    stop = asyncio.Event()
    metrics = worker_metrics(registry or CollectorRegistry())
    task = asyncio.create_task(run_worker(redis, worker_spec, cfg, metrics, stop))
    deadline = time.monotonic() + timeout_s
    while not await predicate(redis):
        assert time.monotonic() < deadline, "condition not reached"
        assert not task.done(), task.exception()
        await asyncio.sleep(0.02)
    stop.set()
    await task


async def count_at_least(redis: aioredis.Redis, n: int) -> bool:
    return len(await replies(redis)) >= n


async def answer_all(
    redis: aioredis.Redis, cfg: WorkerSettings, count: int, split: dict[str, int] | None = None
) -> tuple[list[Envelope], Worker]:
    """``count`` jobs of 2, 4, ... bytes at once through a Bridge (spreading them over
    ``split``'s parts) to one running worker loop; their replies, and the worker."""
    worker = Worker(redis, spec(), cfg, worker_metrics(CollectorRegistry()))
    stop = asyncio.Event()
    serving = asyncio.create_task(worker.run(stop))
    bridge = Bridge(redis, "t", gateway_metrics(CollectorRegistry()), split=split)
    await bridge.start()
    try:
        jobs = [
            bridge.job(TranscribeRequest(audio=bytes(2 * n)), 10.0) for n in range(1, count + 1)
        ]
        answers = await asyncio.gather(
            *(bridge.request(STREAM, job, "stt", 10.0, 1_000) for job in jobs)
        )
    finally:
        stop.set()
        await serving
        await bridge.stop()
    assert [r.parent for r in answers] == [job.id for job in jobs]
    return list(answers), worker
