"""Stand-in worker processes for the scale-out benchmark: the real loop, a sleeping handler.

Each process is what a deployed worker process is: ``shared.multi.serve_process`` running
``run_many`` with one or several ``run_worker`` loops on one job stream. The handler sleeps
in its thread for a model-like time (a model call holds its thread and releases the GIL the
same way), then answers like ``bench.standin``. Children are forked from the benchmark,
so 64 of them start in a moment instead of each importing pydantic and redis-py again.
"""

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection

import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from bench import standin
from shared.messages import Envelope, Transcript
from shared.metrics import PREFIX, WorkerMetrics
from shared.multi import named, run_many, serve_process
from shared.settings import WorkerSettings
from shared.worker import Handler, WorkerSpec


@dataclass(frozen=True)
class WorkerPlan:
    """One worker process: how many loops, on which stream, sleeping how long per job."""

    url: str
    stream: str
    name: str  # consumer-name prefix, unique per process
    loops: int
    concurrency: int  # jobs each loop handles at once
    sleep_s: float


def model_call(sleep_s: float) -> None:
    """The stand-in model call: holds its thread, releases the GIL, uses no CPU. Its own
    function so a profile can tell this wait from work."""
    time.sleep(sleep_s)


def sleeper(sleep_s: float) -> Handler:
    """The stand-in handler, after blocking its thread for ``sleep_s`` (0: no sleep)."""

    def handle(job: Envelope) -> Iterator[Transcript]:
        if sleep_s > 0:
            model_call(sleep_s)
        yield from standin.answer(job)

    return handle


async def warm_pool(redis: aioredis.Redis, connections: int) -> None:
    """Open the connections the run will hold at once (a blocked read and a MULTI per job
    slot) before it starts. A long-running process has them already; here each would cost a
    connect, a handshake and redis-py's package-metadata lookup inside the measured window."""
    await asyncio.gather(*(redis.ping() for _ in range(connections)))


def jobs_done() -> int:
    """Jobs this process's loops finished (``done``), from its Prometheus registry."""
    labels = {"component": standin.COMPONENT, "outcome": "done"}
    return int(REGISTRY.get_sample_value(f"{PREFIX}_jobs_total", labels) or 0)


def serve(plan: WorkerPlan, report: Connection) -> None:
    """Forked-child body: serve until SIGTERM, then send back how many jobs were done."""
    settings = WorkerSettings(
        redis_url=plan.url,
        worker_name=plan.name,
        concurrency=plan.concurrency,
        block_ms=200,  # only how long an idle read waits: a quick exit at the end
        shutdown_grace_s=5.0,
    )
    spec = WorkerSpec(component=standin.COMPONENT, stream=plan.stream, handle=sleeper(plan.sleep_s))
    loops = [(spec, named(settings, str(index))) for index in range(plan.loops)]
    threads = plan.loops * plan.concurrency

    async def body(redis: aioredis.Redis, metrics: WorkerMetrics, stop: asyncio.Event) -> None:
        await warm_pool(redis, 2 * threads + 2)
        await run_many(redis, loops, metrics, stop)

    try:
        serve_process(settings, body)
    finally:
        report.send(jobs_done())
        report.close()
