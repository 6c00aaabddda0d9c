"""Running a blocking, generator-style handler in a thread and streaming its results."""

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel

from shared.messages import Envelope

# Threads are made on demand and reused; the bound only caps a runaway. A process's job
# concurrency (WorkerSettings.concurrency per loop) stays far below it.
MAX_THREADS = 256
POOL = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="handler")


def _fresh_pool_after_fork() -> None:
    """A forked child inherits the pool's bookkeeping but none of its threads: it would count
    the parent's idle threads as its own and never start one, so its jobs would never run."""
    global POOL
    POOL = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="handler")


os.register_at_fork(after_in_child=_fresh_pool_after_fork)


async def iterate_in_thread(
    handle: Callable[[Envelope], Iterator[BaseModel]], job: Envelope
) -> AsyncIterator[BaseModel]:
    """Run a blocking handler in one worker thread and yield its results as they come.

    One thread hop per job (not one per item): the thread hands each result to the event
    loop with ``call_soon_threadsafe``, the last one together with "done", so a one-result
    job wakes the loop once. The thread comes from this module's own pool, submitted to
    directly: ``run_in_executor`` would wrap it in an asyncio future whose completion wakes
    the loop a second time.

    If the consumer stops early (timeout, shutdown, a cancelled turn) the handler's generator
    is closed before it produces its next item, so a streaming model (LLM tokens, TTS
    sentences) stops working instead of running on.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
    abandoned = threading.Event()

    def put(kind: str, value: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed under an abandoned job
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def produce() -> None:
        items = handle(job)
        held: list[object] = []  # a result that may be the last: it travels with "done"
        try:
            for item in items:
                if abandoned.is_set():
                    break
                if held:
                    put("item", held.pop())
                if getattr(item, "last", None) is False:
                    put("item", item)  # a streamed chunk (last=False): out at once
                else:
                    held.append(item)
        except BaseException as exc:  # handed to the loop, which decides the job's fate
            put("error", exc)
        else:
            # One wake-up of the event loop for the usual one-result job, not two.
            put("done", held[0] if held else None)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # runs the handler's own clean-up (e.g. stops generation)

    POOL.submit(produce)
    try:
        while True:
            kind, value = await queue.get()
            if kind == "item":
                yield value  # type: ignore[misc]
            elif kind == "error":
                raise value  # type: ignore[misc]
            else:
                if value is not None:
                    yield value  # type: ignore[misc]
                return
    finally:
        abandoned.set()
