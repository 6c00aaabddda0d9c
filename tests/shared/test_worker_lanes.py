"""Priority lanes and cancelled turns in the worker loop, against a real Redis."""

import asyncio
import threading
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from shared import bus, streams
from shared.messages import AudioFormat, Envelope, ErrorResult, SpeechChunk, Transcript
from shared.metrics import worker_metrics
from shared.worker import WorkerSpec, run_worker
from tests.polling import eventually
from tests.shared.workers import GROUP, STREAM, echo_length, job, replies, settings

pytestmark = pytest.mark.redis

BACKGROUND = streams.background(STREAM)


def lane_spec(handle=echo_length) -> WorkerSpec:  # type: ignore[no-untyped-def]
    return WorkerSpec(
        component="stt", stream=STREAM, handle=handle, model="standin", background_lane=True
    )


async def test_main_stream_is_served_before_the_background_lane(
    aredis: aioredis.Redis, clean_redis: str
) -> None:
    order: list[str] = []

    def record(envelope: Envelope) -> Iterator[Transcript]:
        order.append(envelope.id)
        yield from echo_length(envelope)

    for stream in (STREAM, BACKGROUND):
        await bus.ensure_group(aredis, stream, GROUP)
    partials = [job() for _ in range(3)]
    finals = [job() for _ in range(3)]
    for j in partials:  # the partials were queued first...
        await bus.submit(aredis, BACKGROUND, j)
    for j in finals:
        await bus.submit(aredis, STREAM, j)
    await run_worker(
        aredis, lane_spec(record), settings(clean_redis), worker_metrics(CollectorRegistry()),
        burst=True,
    )  # fmt: skip
    # ...yet every final ran before any of them, and all six were answered and removed.
    assert order == [j.id for j in finals] + [j.id for j in partials]
    assert {r.parent for r in await replies(aredis)} == {j.id for j in partials + finals}
    assert await aredis.xlen(STREAM) == 0 and await aredis.xlen(BACKGROUND) == 0


async def test_background_lane_is_served_when_idle_and_reclaimed(
    aredis: aioredis.Redis, clean_redis: str
) -> None:
    await bus.ensure_group(aredis, STREAM, GROUP)
    await bus.ensure_group(aredis, BACKGROUND, GROUP)
    lost = job()
    await bus.submit(aredis, BACKGROUND, lost)
    # A consumer takes the partial and dies: the lane is reclaimed like the main stream.
    await aredis.xreadgroup(GROUP, "crashed", {BACKGROUND: ">"}, count=1)
    idle_ms = settings(clean_redis).claim_idle_ms

    async def claimable() -> bool:  # idle past claim_idle_ms: a peer may take it over
        pending = await aredis.xpending_range(BACKGROUND, GROUP, "-", "+", 1)
        return bool(pending) and pending[0]["time_since_delivered"] > idle_ms

    await eventually(claimable)
    fresh = job()
    await bus.submit(aredis, BACKGROUND, fresh)
    await run_worker(
        aredis, lane_spec(), settings(clean_redis), worker_metrics(CollectorRegistry()),
        burst=True,
    )  # fmt: skip
    assert {r.parent for r in await replies(aredis)} == {lost.id, fresh.id}
    assert (await aredis.xpending(BACKGROUND, GROUP))["pending"] == 0


async def test_job_of_a_cancelled_turn_is_not_run(aredis: aioredis.Redis, clean_redis: str) -> None:
    ran: list[str] = []

    def record(envelope: Envelope) -> Iterator[Transcript]:
        ran.append(envelope.id)
        yield from echo_length(envelope)

    await aredis.set(streams.session_cancel("s1"), 2)  # turns 1 and 2 were cancelled
    old, current, other = job(session="s1", seq=2), job(session="s1", seq=3), job(session="s2")
    await bus.ensure_group(aredis, STREAM, GROUP)
    for j in (old, current, other):
        await bus.submit(aredis, STREAM, j)
    registry = CollectorRegistry()
    await run_worker(aredis, lane_spec(record), settings(clean_redis), worker_metrics(registry),
                     burst=True)  # fmt: skip
    assert ran == [current.id, other.id]
    got = {r.parent: r.payload for r in await replies(aredis)}
    assert isinstance(got[old.id], ErrorResult) and got[old.id].code == "cancelled"
    assert isinstance(got[current.id], Transcript) and isinstance(got[other.id], Transcript)
    cancelled = {"component": "stt", "outcome": "cancelled"}
    assert registry.get_sample_value("pyparrot_jobs_total", cancelled) == 1
    assert await aredis.xlen(STREAM) == 0


async def test_cancel_during_a_streamed_job_stops_the_handler(
    aredis: aioredis.Redis, clean_redis: str
) -> None:
    """A barge-in while a reply is being spoken: no further chunk goes out, and the
    handler's generator is closed (a real model would stop generating)."""
    fmt = AudioFormat(sample_rate_hz=22_050)
    first_out = threading.Event()
    closed = threading.Event()
    produced: list[int] = []

    def speak(envelope: Envelope) -> Iterator[SpeechChunk]:
        try:
            for index in range(50):
                produced.append(index)
                yield SpeechChunk(audio=b"\x00\x00", audio_format=fmt, index=index, last=False)
                first_out.wait(10)
                threading.Event().wait(0.02)
        finally:
            closed.set()

    turn = job(session="s1", seq=1)
    await bus.ensure_group(aredis, STREAM, GROUP)
    await bus.submit(aredis, STREAM, turn)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(aredis, lane_spec(speak), settings(clean_redis),
                   worker_metrics(CollectorRegistry()), stop)
    )  # fmt: skip
    await eventually(lambda: replies(aredis))
    await aredis.set(streams.session_cancel("s1"), 1)
    first_out.set()
    await eventually(lambda: asyncio.to_thread(closed.wait, 0))
    await eventually(lambda: _pending_is(aredis, 0))
    stop.set()
    await task
    got = await replies(aredis)
    assert isinstance(got[-1].payload, ErrorResult) and got[-1].payload.code == "cancelled"
    chunks = [r for r in got if isinstance(r.payload, SpeechChunk)]
    assert 1 <= len(chunks) <= 3 and len(produced) < 10  # stopped within a chunk or two


async def _pending_is(redis: aioredis.Redis, n: int) -> bool:
    return (await redis.xpending(STREAM, GROUP))["pending"] == n and await redis.xlen(STREAM) == 0
