"""Stand-in consumers for the bus benchmark: ``python -m bench.standin --name N [...]``.

Default: the real consumer-group loop (``shared.worker``) with a trivial handler that
answers every job with a small ``Transcript``. ``--raw``: the same Redis commands
(XREADGROUP, then XADD reply + XACK + XDEL in one MULTI) in a bare loop, to separate what
Redis Streams cost from what PyParrot adds. ``--envelope`` and ``--threads`` put back, one
at a time, the envelope (decode, build, encode) and the handler's thread, so the
benchmark can say which layer costs what.
"""

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from shared import bus, streams
from shared.messages import Envelope, Transcript, pack, unpack
from shared.metrics import worker_metrics
from shared.settings import WorkerSettings
from shared.threads import iterate_in_thread
from shared.worker import WorkerSpec, run_worker

COMPONENT = "standin"
GROUP = streams.group(COMPONENT)
REPLY_FIELD = b"reply_to"
# Bounds a raw reply stream without a second command on the reader's path.
RAW_REPLY_MAXLEN = 100


@dataclass(frozen=True)
class RawMode:
    """What a bare consumer does besides the Redis commands."""

    envelope: bool = False  # decode the job, build and encode a reply envelope
    threads: bool = False  # run the handler in a thread the way shared.worker does


def stream(name: str) -> str:
    """The job stream of one stand-in consumer."""
    return streams.jobs(COMPONENT, name)


def answer(job: Envelope) -> Iterator[Transcript]:
    """The stand-in handler: a small result, no work."""
    yield Transcript(text="ok", language="en", duration_s=0.0, model="standin")


def spec(name: str) -> WorkerSpec:
    """A worker on ``stream(name)`` running the stand-in handler."""
    return WorkerSpec(component=COMPONENT, stream=stream(name), handle=answer, model=name)


async def _threaded(job: Envelope) -> list[BaseModel]:
    """The handler driven exactly as ``shared.worker`` drives it: its own (private) helper,
    so this step follows the worker when it changes."""
    return [item async for item in iterate_in_thread(answer, job)]


async def _reply_data(raw: bytes, mode: RawMode) -> bytes:
    if not mode.envelope:
        return raw
    job = unpack(raw)
    results = await _threaded(job) if mode.threads else list(answer(job))
    return pack(job.reply(results[-1]))


async def serve_raw(
    redis: aioredis.Redis, job_stream: str, mode: RawMode, stop: asyncio.Event
) -> None:
    """Answer each entry on its ``reply_to`` stream, one entry at a time."""
    await bus.ensure_group(redis, job_stream, GROUP)
    while not stop.is_set():
        reply: Any = await redis.xreadgroup(GROUP, "raw", {job_stream: ">"}, count=1, block=500)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                data: dict[Any, Any] = {b"e": await _reply_data(fields[b"e"], mode)}
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.xadd(fields[REPLY_FIELD], data, maxlen=RAW_REPLY_MAXLEN, approximate=True)
                    pipe.xack(job_stream, GROUP, entry_id)
                    pipe.xdel(job_stream, entry_id)
                    await pipe.execute()


Loop = Callable[[aioredis.Redis, asyncio.Event], Awaitable[None]]


def _serve(settings: WorkerSettings, loop: Loop) -> None:
    """Connect, run ``loop`` until SIGTERM/SIGINT, close."""

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        redis = await bus.connect(settings)
        try:
            await loop(redis, stop)
        finally:
            await redis.aclose()

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="stream suffix: pp:jobs:standin:NAME")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs handled at once")
    parser.add_argument("--raw", action="store_true", help="bare Redis commands, no worker loop")
    parser.add_argument("--envelope", action="store_true", help="raw: decode/encode envelopes")
    parser.add_argument(
        "--threads", action="store_true", help="raw: handler in a thread, as the worker"
    )
    args = parser.parse_args()
    # REDIS_URL comes from the environment, as for every PyParrot process.
    settings = WorkerSettings(concurrency=args.concurrency, worker_name=f"standin-{args.name}")
    if args.raw:
        mode = RawMode(args.envelope, args.threads)
        _serve(settings, lambda redis, stop: serve_raw(redis, stream(args.name), mode, stop))
    else:
        metrics = worker_metrics(CollectorRegistry())
        _serve(
            settings,
            lambda redis, stop: run_worker(redis, spec(args.name), settings, metrics, stop),
        )


if __name__ == "__main__":
    main()
