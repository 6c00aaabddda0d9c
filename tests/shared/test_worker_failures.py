"""How the consumer-group loop answers jobs that fail: poison, permanent, bad input,
undecodable, expired (real Redis, stand-in handlers)."""

import time
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from shared import bus, streams
from shared.messages import (
    Envelope,
    ErrorResult,
    Transcript,
    unpack,
)
from shared.metrics import worker_metrics
from shared.worker import JobFailed, Rejected, run_worker
from tests.shared.workers import (
    GROUP,
    STREAM,
    echo_length,
    job,
    replies,
    run_until,
    settings,
    spec,
    submit_all,
)

pytestmark = pytest.mark.redis


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
