"""Running a blocking, generator-style handler in a thread and streaming its results."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator

from pydantic import BaseModel

from shared.messages import Envelope


async def iterate_in_thread(
    handle: Callable[[Envelope], Iterator[BaseModel]], job: Envelope
) -> AsyncIterator[BaseModel]:
    """Run a blocking handler in one worker thread and yield its results as they come.

    One thread hop per job (not one per item): the thread hands each result to the event
    loop with ``call_soon_threadsafe``. If the job is abandoned (timeout, shutdown) the
    thread finishes on its own and its late results are dropped.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    def put(kind: str, value: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed under an abandoned job
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def produce() -> None:
        try:
            for item in handle(job):
                put("item", item)
        except BaseException as exc:  # handed to the loop, which decides the job's fate
            put("error", exc)
        else:
            put("done", None)

    loop.run_in_executor(None, produce)
    while True:
        kind, value = await queue.get()
        if kind == "item":
            yield value  # type: ignore[misc]
        elif kind == "error":
            raise value  # type: ignore[misc]
        else:
            return
