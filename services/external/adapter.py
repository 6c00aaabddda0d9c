"""The adapter's control loop: discover registrations in Redis, run one worker loop per
job stream that has a healthy server, re-check server health periodically.

A stream whose servers are all unhealthy gets no loop (and so no heartbeat): the gateway
then answers "no worker" at once instead of queueing jobs nobody can serve.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import redis.asyncio as aioredis

from services.external.handler import handle
from services.external.pool import Pool, Server, check
from services.external.settings import ExternalSettings
from shared import bus, streams
from shared.metrics import WorkerMetrics
from shared.multi import named
from shared.worker import Worker, WorkerSpec

log = logging.getLogger(__name__)
COMPONENTS = ("asr", "slt", "mt", "tts", "summarizer")


@dataclass(frozen=True)
class Wanted:
    stage: str
    model: str
    languages: tuple[str, ...]
    servers: dict[str, str] = field(hash=False, compare=False)


@dataclass
class Running:
    wanted: Wanted
    stop: asyncio.Event
    task: asyncio.Task[None]
    worker: Worker


async def discover(redis: aioredis.Redis) -> dict[str, Wanted]:
    """Every stream some registered server serves, with its servers (name -> URL)."""
    wanted: dict[str, Wanted] = {}
    for component in COMPONENTS:
        for name, raw in (await redis.hgetall(streams.external_backends(component))).items():
            try:
                record = json.loads(raw)
                for stream in record["streams"]:
                    prior = wanted.get(stream)
                    languages = sorted({*(prior.languages if prior else ()), *record["languages"]})
                    servers = {**(prior.servers if prior else {}), name.decode(): record["server"]}
                    wanted[stream] = Wanted(
                        record["stage"], record["model"], tuple(languages), servers
                    )
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring malformed registration %r of %s", name, component)
    return wanted


class Adapter:
    def __init__(
        self, redis: aioredis.Redis, settings: ExternalSettings, metrics: WorkerMetrics
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.metrics = metrics
        self.pools: dict[str, Pool] = {}
        self.loops: dict[str, Running] = {}
        self.last_check_s = time.monotonic()
        self.health: dict[tuple[str, str], bool] = {}  # (stage, server) -> last seen up

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile until ``stop`` is set, then stop every loop gracefully."""
        try:
            while not stop.is_set():
                try:
                    await self.turn()
                except bus.TRANSIENT as exc:
                    log.warning("redis error: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.discovery_interval_s)
        finally:
            for stream in list(self.loops):
                await self._stop(stream)

    async def turn(self) -> None:
        """One reconciliation: registry -> pools -> health -> running loops."""
        wanted = await discover(self.redis)
        for stream, want in wanted.items():
            if stream not in self.pools:
                self.pools[stream] = Pool(on_mark=self._observer(want.stage))
            self.pools[stream].update(want.servers)
        for stream in set(self.pools) - set(wanted):
            del self.pools[stream]
        if time.monotonic() - self.last_check_s >= self.settings.recheck_interval_s:
            self.last_check_s = time.monotonic()
            await self.recheck()
        for stream in list(self.loops):
            running = self.loops[stream]
            if (
                stream not in wanted
                or running.wanted != wanted[stream]
                or not self._serving(stream)
            ):
                await self._stop(stream)
            else:
                running.worker.info.extra = self._extra(stream)
        for stream, want in wanted.items():
            if stream not in self.loops and self._serving(stream):
                self._start(stream, want)

    async def recheck(self) -> None:
        """Health-check every registered server (in threads) and record the result."""
        for pool in self.pools.values():
            for server in list(pool.servers.values()):
                ok = await asyncio.to_thread(check, server, self.settings.health_timeout_s)
                if ok != server.healthy:
                    log.warning("%s (%s) is %s", server.name, server.url, "up" if ok else "down")
                pool.mark(server, ok)

    def _observer(self, stage: str) -> Callable[[Server, bool], None]:
        """Record a server's health in the metrics (an operator's 'backend down' alert)."""

        def observe(server: Server, healthy: bool) -> None:
            key = (stage, server.name)
            if not healthy and self.health.get(key) is not False:  # went down, not a repeat
                self.metrics.external_down_marks.labels(*key).inc()
            self.health[key] = healthy
            self.metrics.external_up.labels(*key).set(1 if healthy else 0)

        return observe

    def _serving(self, stream: str) -> bool:
        return any(s.healthy for s in self.pools[stream].servers.values())

    def _extra(self, stream: str) -> dict[str, str]:
        servers = self.pools[stream].servers.values()
        return {"servers": ",".join(f"{s.url}{'' if s.healthy else ' (down)'}" for s in servers)}

    def _start(self, stream: str, want: Wanted) -> None:
        variant = streams.variant(stream)
        spec = WorkerSpec(
            component=want.stage,
            stream=stream,
            handle=partial(handle, self.pools[stream], self.settings.request_timeout_s, want.model),
            model=want.model,
            languages=list(want.languages),
            audio_field="audio" if want.stage == "stt" else "",
            background_lane=want.stage == "stt",  # live partials, as local STT workers do
        )
        settings = named(self.settings, f"ext-{want.stage}-{variant}")
        worker = Worker(self.redis, spec, settings, self.metrics)
        worker.info.kind = "external"  # GET /v1/workers tells adapters from local workers
        worker.info.extra = self._extra(stream)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        self.loops[stream] = Running(want, stop, task, worker)
        log.info("serving %s through %s", stream, worker.info.extra["servers"])

    async def _stop(self, stream: str) -> None:
        running = self.loops.pop(stream)
        running.stop.set()
        await running.task
        log.info("stopped serving %s", stream)
