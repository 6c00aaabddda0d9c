"""Group commit: Redis writes requested while the previous one is in flight go out together.

A worker finishing many jobs at once (or a gateway submitting many) would otherwise send
one MULTI (or one EVALSHA) per job: one socket write, one reply parse and one event-loop
wake-up each, which is most of the bus's CPU per job (docs/BENCHMARKS.md, scale-out
profile). Here the first write goes out at once; writes queued while it is in flight are
sent as the next batch, in order. An idle process therefore still writes each job on its
own, with no added wait; batches only grow under load, like a database's group commit.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
Flush = Callable[[list[Item]], Awaitable[list[Result]]]


class Coalescer(Generic[Item, Result]):
    """Queues items; one ``flush`` at a time writes everything queued so far.

    ``flush`` gets the items in the order they were added and returns one result per item;
    an exception it raises is every item's of that batch."""

    def __init__(self, flush: Flush[Item, Result]) -> None:
        self._flush = flush
        self._queued: list[tuple[Item, asyncio.Future[Result]]] = []
        self._running: asyncio.Task[None] | None = None
        self.batches = 0  # flushes so far (items ÷ batches: how much was grouped)
        self.items = 0  # items flushed so far

    def submit(self, item: Item) -> asyncio.Future[Result]:
        """Queue ``item``; the future is resolved once the batch holding it is written.
        Cancelling the future does not take the item back: it is written all the same."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queued.append((item, future))
        if self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._drain())
        return future

    async def add(self, item: Item) -> Result:
        """``submit`` and wait for the result."""
        return await self.submit(item)

    async def _drain(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                self.batches += 1
                self.items += len(batch)
                try:
                    results = await self._flush([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        except asyncio.CancelledError:  # the loop is shutting down: nobody waits forever
            for _, future in self._queued:
                future.cancel()
            self._queued = []
            raise
        finally:
            self._running = None
