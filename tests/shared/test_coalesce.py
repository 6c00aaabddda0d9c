"""Group commit (``shared.coalesce``) alone, then in the worker loop and the Bridge on a real
Redis: many jobs at once share transactions and pipelines, and each still gets one reply."""

import asyncio
from collections import Counter

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from services.gateway.bridge import Bridge
from services.gateway.metrics import gateway_metrics
from shared import bus
from shared.coalesce import Coalescer
from shared.messages import TranscribeRequest, Transcript, unpack
from tests.shared.workers import GROUP, STREAM, answer_all, settings

pytestmark = pytest.mark.redis


async def test_what_queues_meanwhile_goes_in_the_next_batch_and_a_failure_is_the_batchs() -> None:
    batches: list[list[int]] = []

    async def flush(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0.01)
        if 13 in items:
            raise RuntimeError("boom")
        return [i * 2 for i in items]

    coalescer: Coalescer[int, int] = Coalescer(flush)
    assert await coalescer.add(1) == 2  # alone: written at once, no waiting for company
    first = asyncio.gather(*(coalescer.add(i) for i in range(3)))
    await asyncio.sleep(0)  # the first batch (0 alone) is in flight now
    later = asyncio.gather(*(coalescer.add(i) for i in range(3, 6)))
    assert await first == [0, 2, 4]
    assert await later == [6, 8, 10]
    assert batches[1:] == [[0, 1, 2], [3, 4, 5]]
    results = await asyncio.gather(*(coalescer.add(i) for i in (12, 13)), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    assert await coalescer.add(7) == 14  # the next batch is unaffected
    assert (coalescer.batches, coalescer.items) == (5, 10)


async def test_a_cancelled_caller_does_not_take_its_item_back() -> None:
    written: list[str] = []

    async def flush(items: list[str]) -> list[None]:
        await asyncio.sleep(0.01)
        written.extend(items)
        return [None] * len(items)

    coalescer: Coalescer[str, None] = Coalescer(flush)
    waiting = asyncio.create_task(coalescer.add("a"))
    await asyncio.sleep(0)
    waiting.cancel()
    await coalescer.add("b")
    assert written == ["a", "b"]


async def test_many_jobs_at_once_share_transactions_and_each_gets_one_reply(
    aredis: aioredis.Redis, clean_redis: str
) -> None:
    if bus.is_cluster(aredis):
        pytest.skip("counts one server's commands; on a cluster jobs settle by script")
    await aredis.config_resetstat()
    replies, worker = await answer_all(aredis, settings(clean_redis, concurrency=16), 64)
    assert all(isinstance(r.payload, Transcript) for r in replies)
    assert [r.payload.text for r in replies] == [str(2 * n) for n in range(1, 65)]  # type: ignore[union-attr]
    assert await aredis.xlen(STREAM) == 0
    assert (await aredis.xpending(STREAM, GROUP))["pending"] == 0
    stats = await aredis.info("commandstats")
    assert stats["cmdstat_xack"]["calls"] == 64
    assert stats["cmdstat_exec"]["calls"] < 64  # finishes shared MULTIs
    assert stats["cmdstat_evalsha"]["calls"] == 64  # one bounded submit per job, pipelined
    assert worker._finishes.batches < 64 and worker._finishes.items == 64


async def test_submits_after_a_redis_script_flush_load_the_script_again(
    aredis: aioredis.Redis,
) -> None:
    bridge = Bridge(aredis, "t", gateway_metrics(CollectorRegistry()))
    first = bridge.job(TranscribeRequest(audio=bytes(2)), 10.0)
    await bridge._submit(STREAM, first, "stt", 1_000)
    await aredis.script_flush()  # as a restarted Redis would have forgotten it
    jobs = [bridge.job(TranscribeRequest(audio=bytes(2)), 10.0) for _ in range(3)]
    ids = await asyncio.gather(*(bridge._submit(STREAM, job, "stt", 1_000) for job in jobs))
    entries = await aredis.xrange(STREAM)
    assert [entry_id for entry_id, _ in entries[1:]] == ids
    assert Counter(unpack(fields[b"e"]).id for _, fields in entries) == Counter(
        j.id for j in [first, *jobs]
    )
