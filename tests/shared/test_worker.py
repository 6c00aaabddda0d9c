"""The consumer-group loop against a real Redis, with stand-in handlers (no model)."""

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from shared.heartbeat import live_workers
from shared.messages import (
    AudioFormat,
    Envelope,
    SpeechChunk,
    Transcript,
)
from shared.metrics import worker_metrics
from shared.worker import run_worker
from tests.polling import eventually
from tests.shared.workers import (
    GROUP,
    STREAM,
    count_at_least,
    echo_length,
    job,
    replies,
    run_until,
    settings,
    spec,
    submit_all,
)

pytestmark = pytest.mark.redis


async def test_done_publishes_results_and_acks(aredis: aioredis.Redis, clean_redis: str) -> None:
    jobs = [job(n) for n in (10, 20, 30, 40, 50)]
    await submit_all(aredis, jobs)
    registry = CollectorRegistry()
    await run_worker(aredis, spec(), settings(clean_redis), worker_metrics(registry), burst=True)
    got = {r.parent: r.payload.text for r in await replies(aredis)}  # type: ignore[union-attr]
    assert got == {j.id: str(len(j.payload.audio)) for j in jobs}  # type: ignore[union-attr]
    assert await aredis.xlen(STREAM) == 0  # acked and deleted in the same transaction
    assert (await aredis.xpending(STREAM, GROUP))["pending"] == 0
    assert (
        registry.get_sample_value("pyparrot_jobs_total", {"component": "stt", "outcome": "done"})
        == 5
    )


async def test_streamed_results_keep_their_order(aredis: aioredis.Redis, clean_redis: str) -> None:
    def three(envelope: Envelope) -> Iterator[Transcript]:
        for i in range(3):
            yield Transcript(text=f"part {i}", language="en", duration_s=0.0)

    await submit_all(aredis, [job()])
    await run_worker(
        aredis, spec(three), settings(clean_redis), worker_metrics(CollectorRegistry()), burst=True
    )
    got = await replies(aredis)
    assert [(r.seq, r.payload.text) for r in got] == [  # type: ignore[union-attr]
        (0, "part 0"),
        (1, "part 1"),
        (2, "part 2"),
    ]


async def test_reclaims_jobs_of_a_dead_consumer(aredis: aioredis.Redis, clean_redis: str) -> None:
    jobs = [job(), job()]
    await submit_all(aredis, jobs)
    # A consumer takes both jobs and dies without acknowledging them.
    taken = await aredis.xreadgroup(GROUP, "crashed", {STREAM: ">"}, count=10)
    assert len(taken[0][1]) == 2
    await asyncio.sleep(0.15)  # longer than claim_idle_ms
    registry = CollectorRegistry()
    await run_worker(aredis, spec(), settings(clean_redis), worker_metrics(registry), burst=True)
    assert {r.parent for r in await replies(aredis)} == {j.id for j in jobs}
    assert (await aredis.xpending(STREAM, GROUP))["pending"] == 0
    assert registry.get_sample_value("pyparrot_reclaimed_total", {"component": "stt"}) == 2


async def test_sigterm_path_finishes_in_flight_job(
    aredis: aioredis.Redis, clean_redis: str
) -> None:
    started = threading.Event()

    def slow(envelope: Envelope) -> Iterator[Transcript]:
        started.set()
        time.sleep(0.5)
        yield from echo_length(envelope)

    await submit_all(aredis, [job()])
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(
            aredis, spec(slow), settings(clean_redis), worker_metrics(CollectorRegistry()), stop
        )
    )
    assert await asyncio.to_thread(started.wait, 10)
    assert [w.name for w in await live_workers(aredis)] == ["w1"]
    stop.set()  # what the SIGTERM handler does
    await asyncio.wait_for(task, 10)
    assert len(await replies(aredis)) == 1
    assert (await aredis.xpending(STREAM, GROUP))["pending"] == 0
    assert await live_workers(aredis) == []  # heartbeat removed


async def test_unfinished_job_stays_pending_after_grace(
    aredis: aioredis.Redis, clean_redis: str
) -> None:
    started = threading.Event()

    def stuck(envelope: Envelope) -> Iterator[Transcript]:
        started.set()
        time.sleep(1.0)
        yield from echo_length(envelope)

    await submit_all(aredis, [job()])
    stop = asyncio.Event()
    cfg = settings(clean_redis, shutdown_grace_s=0.1)
    task = asyncio.create_task(
        run_worker(aredis, spec(stuck), cfg, worker_metrics(CollectorRegistry()), stop)
    )
    assert await asyncio.to_thread(started.wait, 10)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert (await aredis.xpending(STREAM, GROUP))["pending"] == 1  # left for a peer
    assert await replies(aredis) == []


async def test_heartbeat_advertises_capabilities(aredis: aioredis.Redis, clean_redis: str) -> None:
    async def registered(redis: aioredis.Redis) -> bool:
        return bool(await live_workers(redis))

    seen = []

    async def capture(redis: aioredis.Redis) -> bool:
        seen.extend(await live_workers(redis))
        return bool(seen)

    await run_until(aredis, settings(clean_redis), spec(), predicate=capture)
    [info] = seen
    assert (info.component, info.name, info.model, info.languages, info.stream) == (
        "stt",
        "w1",
        "standin",
        ["en"],
        STREAM,
    )
    assert info.pid > 0 and info.host


async def test_missing_group_is_recreated(aredis: aioredis.Redis, clean_redis: str) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(aredis, spec(), settings(clean_redis), worker_metrics(CollectorRegistry()), stop)
    )
    await eventually(lambda: live_workers(aredis))
    await aredis.delete(STREAM)  # someone wiped the stream and its group
    await asyncio.sleep(0.2)  # let the worker's blocked read notice
    await submit_all(aredis, [job()])
    await eventually(lambda: replies(aredis))
    assert not task.done()
    stop.set()
    await task


@pytest.mark.parametrize("concurrency", [4])
async def test_concurrency_handles_jobs_in_parallel(
    aredis: aioredis.Redis, clean_redis: str, concurrency: int
) -> None:
    def sleepy(envelope: Envelope) -> Iterator[Transcript]:
        time.sleep(0.3)
        yield from echo_length(envelope)

    await submit_all(aredis, [job() for _ in range(4)])
    started = time.perf_counter()
    await run_worker(
        aredis,
        spec(sleepy),
        settings(clean_redis, concurrency=concurrency),
        worker_metrics(CollectorRegistry()),
        burst=True,
    )
    assert len(await replies(aredis)) == 4
    assert time.perf_counter() - started < 1.0  # four 0.3 s jobs overlapped (serial: 1.2 s)


async def test_streamed_chunk_is_published_before_the_handler_goes_on(
    aredis: aioredis.Redis, clean_redis: str
) -> None:
    seen_first = threading.Event()
    fmt = AudioFormat(sample_rate_hz=22_050)

    def speak(envelope: Envelope) -> Iterator[SpeechChunk]:
        yield SpeechChunk(audio=b"\x00\x00", audio_format=fmt, index=0, last=False)
        # The next sentence is "synthesised" only once the first reached the reply stream.
        assert seen_first.wait(10), "first chunk was held back"
        yield SpeechChunk(audio=b"\x00\x00", audio_format=fmt, index=1, last=True)

    await submit_all(aredis, [job()])
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker(
            aredis, spec(speak), settings(clean_redis), worker_metrics(CollectorRegistry()), stop
        )
    )
    await eventually(lambda: replies(aredis))
    seen_first.set()
    await eventually(lambda: count_at_least(aredis, 2))
    stop.set()
    await task
    got = await replies(aredis)
    assert [(r.seq, r.payload.index, r.payload.last) for r in got] == [  # type: ignore[union-attr]
        (0, 0, False),
        (1, 1, True),
    ]
