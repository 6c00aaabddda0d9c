"""The consumer-group loop against a real Redis, with stand-in handlers (no model)."""

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from shared import bus, streams
from shared.heartbeat import live_workers
from shared.messages import (
    AudioFormat,
    Envelope,
    ErrorResult,
    SpeechChunk,
    TranscribeRequest,
    Transcript,
    unpack,
)
from shared.metrics import worker_metrics
from shared.settings import WorkerSettings
from shared.worker import JobFailed, Rejected, WorkerSpec, run_worker
from tests.polling import eventually

pytestmark = pytest.mark.redis

STREAM = streams.jobs("stt", "standin")
REPLIES = streams.replies("test")
GROUP = streams.group("stt")


def settings(url: str, **overrides: object) -> WorkerSettings:
    base: dict[str, object] = dict(
        redis_url=url,
        worker_name="w1",
        claim_idle_ms=100,
        block_ms=50,
        max_deliveries=3,
        heartbeat_interval_s=0.05,
        shutdown_grace_s=5,
    )
    return WorkerSettings(**{**base, **overrides})  # type: ignore[arg-type]


def job(n_samples: int = 160, **kw: object) -> Envelope:
    return Envelope(
        payload=TranscribeRequest(audio=b"\x00\x00" * n_samples), reply_to=REPLIES, **kw
    )


def echo_length(envelope: Envelope) -> Iterator[Transcript]:
    """Stand-in handler: reports how many audio bytes it got."""
    audio = envelope.payload.audio  # type: ignore[union-attr]
    yield Transcript(text=str(len(audio)), language="en", duration_s=0.0)


def spec(handle=echo_length) -> WorkerSpec:  # type: ignore[no-untyped-def]
    return WorkerSpec(
        component="stt", stream=STREAM, handle=handle, model="standin", languages=["en"]
    )


async def replies(redis: aioredis.Redis) -> list[Envelope]:
    return [unpack(fields[b"e"]) for _id, fields in await redis.xrange(REPLIES)]


async def submit_all(redis: aioredis.Redis, jobs: list[Envelope]) -> None:
    await bus.ensure_group(redis, STREAM, GROUP)
    for j in jobs:
        await bus.submit(redis, STREAM, j)


async def run_until(
    redis: aioredis.Redis,
    cfg: WorkerSettings,
    worker_spec: WorkerSpec,
    done: "asyncio.Future[object] | None" = None,
    predicate=None,
    registry: CollectorRegistry | None = None,
    timeout_s: float = 10,
) -> None:  # type: ignore[no-untyped-def]
    """Run a non-burst worker until ``predicate(redis)`` holds, then stop it gracefully."""
    stop = asyncio.Event()
    metrics = worker_metrics(registry or CollectorRegistry())
    task = asyncio.create_task(run_worker(redis, worker_spec, cfg, metrics, stop))
    deadline = time.monotonic() + timeout_s
    while not await predicate(redis):
        assert time.monotonic() < deadline, "condition not reached"
        assert not task.done(), task.exception()
        await asyncio.sleep(0.02)
    stop.set()
    await task


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


async def test_poison_job_is_dead_lettered_after_max_deliveries(
    aredis: aioredis.Redis, clean_redis: str
) -> None:
    calls: list[str] = []

    def poison_or_echo(envelope: Envelope) -> Iterator[Transcript]:
        calls.append(envelope.id)
        if envelope.session == "poison":
            raise RuntimeError("always fails")
        yield from echo_length(envelope)

    bad, good = job(session="poison"), job()
    await submit_all(aredis, [bad, good])

    async def settled(redis: aioredis.Redis) -> bool:
        return len(await replies(redis)) == 2

    await run_until(aredis, settings(clean_redis), spec(poison_or_echo), predicate=settled)
    assert calls.count(bad.id) == 3 and calls.count(good.id) == 1
    by_parent = {r.parent: r.payload for r in await replies(aredis)}
    assert isinstance(by_parent[bad.id], ErrorResult)
    assert by_parent[bad.id].code == "failed"  # type: ignore[union-attr]
    assert "always fails" in by_parent[bad.id].message  # type: ignore[union-attr]
    assert isinstance(by_parent[good.id], Transcript)
    dead = await aredis.xrange(streams.dead(STREAM))
    assert len(dead) == 1
    assert dead[0][1][b"code"] == b"failed" and dead[0][1][b"deliveries"] == b"3"
    assert unpack(dead[0][1][b"e"]).id == bad.id  # the original job is kept for replay
    assert (await aredis.xpending(STREAM, GROUP))["pending"] == 0


async def test_a_permanent_failure_of_ours_is_dead_at_once(
    aredis: aioredis.Redis, clean_redis: str
) -> None:
    calls = 0

    def garbled(envelope: Envelope) -> Iterator[Transcript]:
        nonlocal calls
        calls += 1
        raise JobFailed("bad_backend_reply", "the backend sent garbage")
        yield  # pragma: no cover

    await submit_all(aredis, [job()])
    await run_worker(
        aredis,
        spec(garbled),
        settings(clean_redis),
        worker_metrics(CollectorRegistry()),
        burst=True,
    )
    assert calls == 1
    [reply] = await replies(aredis)
    assert reply.payload == ErrorResult(
        code="bad_backend_reply", message="the backend sent garbage", stage="stt"
    )
    assert await aredis.xlen(streams.dead(STREAM)) == 1


async def test_bad_input_is_answered_at_once_and_not_dead_lettered(
    aredis: aioredis.Redis, clean_redis: str
) -> None:
    calls = 0

    def reject(envelope: Envelope) -> Iterator[Transcript]:
        nonlocal calls
        calls += 1
        raise Rejected("empty_audio", "no speech in there")
        yield  # pragma: no cover

    await submit_all(aredis, [job()])
    registry = CollectorRegistry()
    await run_worker(
        aredis, spec(reject), settings(clean_redis), worker_metrics(registry), burst=True
    )
    assert calls == 1
    [reply] = await replies(aredis)
    assert reply.payload == ErrorResult(
        code="empty_audio", message="no speech in there", stage="stt"
    )
    assert await aredis.xlen(streams.dead(STREAM)) == 0
    assert await aredis.xlen(STREAM) == 0
    assert (await aredis.xpending(STREAM, GROUP))["pending"] == 0
    assert (
        registry.get_sample_value(
            "pyparrot_jobs_total", {"component": "stt", "outcome": "rejected"}
        )
        == 1
    )


async def test_undecodable_entry_is_dead_lettered(aredis: aioredis.Redis, clean_redis: str) -> None:
    await bus.ensure_group(aredis, STREAM, GROUP)
    await aredis.xadd(STREAM, {b"e": b"\xc1 not msgpack"})
    await aredis.xadd(STREAM, {b"other": b"field"})
    registry = CollectorRegistry()
    await run_worker(aredis, spec(), settings(clean_redis), worker_metrics(registry), burst=True)
    dead = await aredis.xrange(streams.dead(STREAM))
    assert [d[1][b"code"] for d in dead] == [b"invalid_message", b"invalid_message"]
    assert await aredis.xlen(STREAM) == 0
    assert (
        registry.get_sample_value("pyparrot_jobs_total", {"component": "stt", "outcome": "invalid"})
        == 2
    )


async def test_expired_job_is_answered_unhandled(aredis: aioredis.Redis, clean_redis: str) -> None:
    ran: list[str] = []

    def record(envelope: Envelope) -> Iterator[Transcript]:
        ran.append(envelope.id)
        yield from echo_length(envelope)

    late = job(deadline_s=time.time() - 1)
    await submit_all(aredis, [late])
    await run_worker(
        aredis, spec(record), settings(clean_redis), worker_metrics(CollectorRegistry()),
        burst=True,
    )  # fmt: skip
    assert ran == []
    [reply] = await replies(aredis)
    assert isinstance(reply.payload, ErrorResult) and reply.payload.code == "expired"
    assert reply.parent == late.id and await aredis.xlen(STREAM) == 0


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
    await eventually(lambda: _count_at_least(aredis, 2))
    stop.set()
    await task
    got = await replies(aredis)
    assert [(r.seq, r.payload.index, r.payload.last) for r in got] == [  # type: ignore[union-attr]
        (0, 0, False),
        (1, 1, True),
    ]


async def _count_at_least(redis: aioredis.Redis, n: int) -> bool:
    return len(await replies(redis)) >= n
