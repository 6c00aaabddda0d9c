"""A prototype, for measurement only: the worker loop and the Bridge with batched writes.

The profile of the zero-sleep runs shows most Python CPU spent on socket sends and receives
and redis-py's per-command work: every job costs the worker one MULTI round trip and the
producer one EVALSHA round trip of its own. Here both are coalesced: jobs that finish (or
are submitted) while the previous write is still in flight go out together in the next
one. One connection write per batch instead of per job; the same commands, the same
atomicity per job (a batch of finishes is one MULTI, so each job's reply and ack still
commit together). Nothing in ``shared/`` uses this; it measures a proposal.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from services.gateway.bridge import SUBMIT_BOUNDED, Backlogged, Bridge
from shared import bus
from shared.intake import Entry
from shared.messages import Envelope, pack
from shared.worker import Worker

Flush = Callable[[list[Any]], Awaitable[list[Any]]]


class Coalescer:
    """Queues items; one flush at a time sends everything queued so far, in order."""

    def __init__(self, flush: Flush) -> None:
        self.flush = flush
        self.queued: list[tuple[Any, asyncio.Future[Any]]] = []
        self.running: asyncio.Task[None] | None = None

    async def add(self, item: Any) -> Any:
        """Queue ``item``; return its result once the batch holding it is written."""
        future = asyncio.get_running_loop().create_future()
        self.queued.append((item, future))
        if self.running is None:
            self.running = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.queued:
                batch, self.queued = self.queued, []
                try:
                    results = await self.flush([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self.running = None


class BatchingWorker(Worker):
    """``shared.worker.Worker`` whose final publish + XACK + XDEL is one MULTI per batch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.finishes = Coalescer(self._flush_finishes)

    async def _flush_finishes(
        self, items: list[tuple[Entry, list[Envelope], Envelope | None]]
    ) -> list[None]:
        async with self.redis.pipeline(transaction=True) as pipe:
            for entry, replies, job in items:
                if job is not None and job.reply_to:
                    for reply in replies:
                        bus.publish_reply(pipe, reply, job.reply_to)
                pipe.xack(entry.stream, self.group, entry.id)
                pipe.xdel(entry.stream, entry.id)
            await pipe.execute()
        return [None] * len(items)

    async def _finish(
        self, entry: Entry, replies: list[Envelope], outcome: str, job: Envelope | None = None
    ) -> None:
        await self.finishes.add((entry, replies, job))
        self.metrics.jobs.labels(self.spec.component, outcome).inc()


class CoalescingBridge(Bridge):
    """The gateway's Bridge whose bounded submits (the Lua XLEN + XADD) are pipelined."""

    def __init__(self, redis: aioredis.Redis, *args: Any, **kwargs: Any) -> None:
        super().__init__(redis, *args, **kwargs)
        self.submits = Coalescer(self._flush_submits)

    async def start(self) -> None:
        # Loaded once here: redis-py would send SCRIPT EXISTS before every pipeline holding
        # a Script object, one more round trip per batch.
        await self.redis.script_load(SUBMIT_BOUNDED)
        await super().start()

    async def _flush_submits(self, items: list[tuple[str, bytes, int]]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, data, bound in items:
                pipe.evalsha(self._submit_bounded.sha, 1, stream, data, bound)
            try:
                return list(await pipe.execute())
            except NoScriptError:  # Redis restarted: load it again, send the batch again
                await self.redis.script_load(SUBMIT_BOUNDED)
                return list(await pipe.execute())

    async def _submit(
        self, stream: str, job: Envelope, component: str, max_backlog: int | None
    ) -> None:
        if max_backlog is None:
            await super()._submit(stream, job, component, max_backlog)
            return
        if await self.submits.add((stream, pack(job), max_backlog)) is None:
            raise Backlogged(component, max_backlog)
