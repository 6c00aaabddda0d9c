"""The pieces of a bus round trip timed alone in this process (no Redis, no other process)."""

import asyncio
import time
from collections.abc import Awaitable, Callable

from bench.standin import answer
from shared.messages import Envelope, TranscribeRequest, Transcript, pack, unpack
from shared.threads import iterate_in_thread

REPEAT = 2_000


def _time(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


async def _time_async(fn: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    return samples


async def _handler_in_thread(job: Envelope) -> None:
    async for _item in iterate_in_thread(answer, job):
        pass


async def _threads(job: Envelope, repeat: int) -> dict[str, list[float]]:
    return {
        "handler inline (the stand-in's own cost)": _time(lambda: list(answer(job)), repeat),
        "handler in a thread, as `shared.worker` runs it": await _time_async(
            lambda: _handler_in_thread(job), repeat
        ),
        "one `asyncio.to_thread` round trip": await _time_async(
            lambda: asyncio.to_thread(int), repeat
        ),
    }


def measure(payload_bytes: int, repeat: int = REPEAT) -> dict[str, list[float]]:
    """Seconds per call of each piece, for a job carrying ``payload_bytes`` of audio."""
    payload = TranscribeRequest(audio=bytes(payload_bytes))
    job = Envelope(payload=payload, reply_to="pp:replies:bench", deadline_s=time.time() + 60)
    job_data = pack(job)
    result = Transcript(text="ok", language="en", duration_s=0.0, model="standin")
    reply_data = pack(job.reply(result))
    pieces = {
        "job: build the envelope + msgpack (gateway)": _time(
            lambda: pack(Envelope(payload=payload, reply_to="r", deadline_s=1e10)), repeat
        ),
        "job: decode + validate (worker)": _time(lambda: unpack(job_data), repeat),
        "reply: build + msgpack (worker)": _time(lambda: pack(job.reply(result)), repeat),
        "reply: decode + validate (gateway)": _time(lambda: unpack(reply_data), repeat),
    }
    return pieces | asyncio.run(_threads(job, repeat))
