"""Worker processes: one or several loops (e.g. one per MT pair) sharing one model.

``run_worker`` serves one stream; a process whose model serves several variants runs one
loop per stream here, sharing the Redis connection, the metrics and the stop signal. Each
loop needs its own settings only for a distinct ``worker_name`` (its heartbeat key).
"""

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis
import uvloop
from prometheus_client import REGISTRY, start_http_server

from shared import bus
from shared.metrics import WorkerMetrics, worker_metrics
from shared.settings import WorkerSettings
from shared.worker import WorkerSpec, run_worker

Loop = tuple[WorkerSpec, WorkerSettings]


def named(settings: WorkerSettings, variant: str) -> WorkerSettings:
    """A copy of ``settings`` whose worker name is suffixed with ``variant``."""
    return settings.model_copy(update={"worker_name": f"{settings.worker_name}:{variant}"})


async def run_many(
    redis: aioredis.Redis,
    loops: Sequence[Loop],
    metrics: WorkerMetrics,
    stop: asyncio.Event | None = None,
    burst: bool = False,
) -> None:
    """Run one ``run_worker`` loop per (spec, settings); if one fails, all stop."""
    stop = stop or asyncio.Event()
    # A TaskGroup cancels the siblings of a crashed loop, so the process exits and is
    # restarted whole instead of silently serving only some of its streams.
    async with asyncio.TaskGroup() as group:
        for spec, settings in loops:
            group.create_task(run_worker(redis, spec, settings, metrics, stop, burst))


Body = Callable[[aioredis.Redis, WorkerMetrics, asyncio.Event], Awaitable[None]]


def serve_process(settings: WorkerSettings, body: Body) -> None:
    """Process entry point: metrics port, Redis connection, SIGTERM/SIGINT -> ``stop``.

    Handlers run on ``shared.threads.POOL``, not asyncio's default executor (cores + 4
    threads), which would quietly serialise a process running more jobs than that. The
    event loop is uvloop's, as under the gateway's uvicorn: the bus's per-job socket and
    task work costs less CPU there (docs/BENCHMARKS.md, scale-out)."""
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    metrics = worker_metrics(REGISTRY)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        redis = await bus.connect(settings)
        try:
            await body(redis, metrics, stop)
        finally:
            await redis.aclose()

    uvloop.run(main())


def serve_many(loops: Sequence[Loop], settings: WorkerSettings) -> None:
    """Process entry point for one or several worker loops."""
    serve_process(settings, lambda redis, metrics, stop: run_many(redis, loops, metrics, stop))
