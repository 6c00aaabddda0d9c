"""The scale-out benchmark's own machinery: the exactly-once bookkeeping, the profile
buckets, the batched-writes prototype, and one short real phase."""

import asyncio
from collections import Counter

import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from bench import scaleout, scaleout_profile
from bench.scaleout_batching import BatchingWorker, Coalescer
from bench.scaleout_producer import CountingCoalescingBridge, ProducerResult, _tally
from bench.scaleout_worker import sleeper
from bench.stack import Stack
from bench.standin import COMPONENT, stream
from shared.messages import TranscribeRequest, Transcript
from shared.metrics import gateway_metrics, worker_metrics
from shared.settings import WorkerSettings
from shared.worker import WorkerSpec


def test_tally_tells_once_missing_duplicated_and_stray() -> None:
    out = ProducerResult()
    _tally(["a", "b", "c"], Counter({"a": 1, "b": 2, "x": 1}), out)
    assert (out.submitted, out.replies) == (3, 4)
    assert (out.once, out.missing, out.duplicated, out.stray) == (1, 1, 1, 1)


def test_profile_buckets_by_innermost_known_layer_and_drops_idle() -> None:
    root = "serve (bench/scaleout_worker.py:77);_run_once (asyncio/base_events.py:1922)"
    collapsed = "\n".join(
        [
            f"{root};Worker._process (shared/worker.py:246);unpack (shared/messages.py:266) 3",
            f"{root};_send (redis/asyncio/connection.py:1);write (asyncio/selector_events.py:1) 1",
            f"{root};EpollSelector.select (selectors.py:468) 50",
        ]
    )
    shares = dict(scaleout_profile.shares(collapsed))
    assert shares == {
        scaleout_profile.BUCKETS[0][0]: 0.75,  # the envelope
        scaleout_profile.BUCKETS[1][0]: 0.25,  # the socket write, not asyncio or redis-py
    }


async def test_coalescer_batches_what_queues_meanwhile_and_fails_the_whole_batch() -> None:
    batches: list[list[int]] = []

    async def flush(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0.01)
        if 13 in items:
            raise RuntimeError("boom")
        return [i * 2 for i in items]

    coalescer = Coalescer(flush)
    assert await asyncio.gather(*(coalescer.add(i) for i in range(5))) == [0, 2, 4, 6, 8]
    assert batches == [[0, 1, 2, 3, 4]]
    results = await asyncio.gather(*(coalescer.add(i) for i in (12, 13)), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    assert await coalescer.add(7) == 14  # the next batch is unaffected


async def test_prototype_answers_every_job_once_with_fewer_transactions(
    aredis: aioredis.Redis, clean_redis: str
) -> None:
    await aredis.config_resetstat()
    settings = WorkerSettings(redis_url=clean_redis, worker_name="w", concurrency=16)
    spec = WorkerSpec(component=COMPONENT, stream=stream("t"), handle=sleeper(0.0))
    worker = BatchingWorker(aredis, spec, settings, worker_metrics(CollectorRegistry()))
    stop = asyncio.Event()
    serving = asyncio.create_task(worker.run(stop))
    bridge = CountingCoalescingBridge(aredis, "t", gateway_metrics(CollectorRegistry()))
    await bridge.start()
    try:
        jobs = [bridge.job(TranscribeRequest(audio=bytes(64)), 10.0) for _ in range(64)]
        replies = await asyncio.gather(
            *(bridge.request(stream("t"), job, COMPONENT, 10.0, 1_000) for job in jobs)
        )
    finally:
        stop.set()
        await serving
        await bridge.stop()
    assert all(isinstance(r.payload, Transcript) for r in replies)
    assert [r.parent for r in replies] == [job.id for job in jobs]
    assert bridge.replies == Counter({job.id: 1 for job in jobs})
    assert await aredis.xlen(stream("t")) == 0
    assert (await aredis.xpending(stream("t"), "pp:standin"))["pending"] == 0
    stats = await aredis.info("commandstats")
    assert stats["cmdstat_xack"]["calls"] == 64
    assert stats["cmdstat_exec"]["calls"] < 64  # finishes shared MULTIs
    assert stats["cmdstat_evalsha"]["calls"] == 64  # one bounded submit per job, pipelined


@pytest.mark.timeout(60)
def test_a_short_phase_counts_every_reply() -> None:
    config = scaleout.ScaleConfig(sleep_ms=20, warmup_s=0.3, measure_s=1.0)
    layout = scaleout.sleeping_layout(scaleout.TASKS, 4, config)
    with Stack() as stack:
        result = scaleout.run_phase(stack, layout, config, "t")
        client = redis.Redis.from_url(stack.redis_url)
        leftover = list(client.scan_iter(match="pp:worker:*"))
        client.close()
    assert result.check.ok, result.check
    assert result.check.submitted == result.check.worker_done > 20
    # 4 workers × 20 ms: about 200 jobs/s at most (the rate is taken between completions,
    # so a little over), and more than one worker's 50 if the four really run at once
    assert 50 < result.throughput <= 220
    assert leftover == []  # every worker stopped cleanly and removed its heartbeat
