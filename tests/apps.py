"""The gateway app and worker loops as tests run them: the app built over a settings object
with a fresh metrics registry, its lifespan (bridge, monitor, readers) started and stopped
around the test; worker loops in the test's event loop, ready before it goes on."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared import bus, heartbeat
from shared.metrics import worker_metrics
from shared.settings import WorkerSettings
from shared.worker import WorkerSpec, run_worker
from tests.polling import eventually


@asynccontextmanager
async def running_app(settings: GatewaySettings) -> AsyncIterator[FastAPI]:
    """A started gateway app over ``settings``; stopped on exit."""
    app = create_app(settings, CollectorRegistry())
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def running_workers(
    url: str, loops: list[tuple[WorkerSpec, WorkerSettings]]
) -> AsyncIterator[None]:
    """Real consumer-group worker loops (real handlers) in this event loop, each with its
    heartbeat written (so the gateway routes to it) before the test goes on; stopped on
    exit."""
    redis = bus.client(url)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            run_worker(redis, spec, settings, worker_metrics(CollectorRegistry()), stop)
        )
        for spec, settings in loops
    ]

    async def ready() -> bool:
        for task in tasks:
            if task.done():
                task.result()  # a loop that died: its error, not a timeout
        live = {(w.component, w.name) for w in await heartbeat.live_workers(redis)}
        return all((spec.component, s.worker_name) in live for spec, s in loops)

    try:
        await eventually(ready, timeout_s=30)
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await redis.aclose()
