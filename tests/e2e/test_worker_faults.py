"""Real STT worker processes under faults: nothing lost, nothing duplicated.

SIGKILL mid-load: the dead worker's pending jobs are reclaimed by the live one after
STT_CLAIM_IDLE_MS. SIGTERM: the worker finishes its job, acks, drops its heartbeat, exits 0,
and leaves unread jobs for the next worker.
"""

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis

from shared import bus, streams
from shared.heartbeat import live_workers
from shared.messages import Envelope, TranscribeRequest, Transcript, unpack
from shared.textnorm import wer
from tests.audio import read_pcm, reference
from tests.polling import eventually

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.timeout(240)]
STREAM = streams.jobs("stt", "tiny.en")
REPLIES = streams.replies("faults")


@pytest.fixture
def start_worker(clean_redis: str) -> Iterator:  # type: ignore[type-arg]
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "REDIS_URL": clean_redis,
            "STT_WORKER_NAME": name,
            "STT_CLAIM_IDLE_MS": "1500",
            "STT_CPU_THREADS": "1",
            "STT_BLOCK_MS": "100",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.stt"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(10)


async def submit(redis: aioredis.Redis, count: int) -> list[Envelope]:
    audio, fmt = read_pcm("en_short")
    jobs = [
        Envelope(payload=TranscribeRequest(audio=audio, audio_format=fmt), reply_to=REPLIES)
        for _ in range(count)
    ]
    for job in jobs:
        await bus.submit(redis, STREAM, job)
    return jobs


async def results(redis: aioredis.Redis) -> list[Envelope]:
    return [unpack(f[b"e"]) for _i, f in await redis.xrange(REPLIES)]


async def names_of_live(redis: aioredis.Redis) -> set[str]:
    return {w.name for w in await live_workers(redis)}


async def test_sigkill_mid_load_loses_and_duplicates_nothing(
    aredis: aioredis.Redis,
    start_worker,  # type: ignore[no-untyped-def]
) -> None:
    start_worker("victim"), start_worker("survivor")
    await eventually(lambda: _both_live(aredis), timeout_s=60)
    jobs = await submit(aredis, 8)
    victim_pending = await eventually(lambda: _pending_of(aredis, "victim"), timeout_s=30)
    assert victim_pending
    pid = next(w.pid for w in await live_workers(aredis) if w.name == "victim")
    os.kill(pid, signal.SIGKILL)  # mid-job: its pending entries must be reclaimed

    async def all_answered() -> bool:
        return len(await results(aredis)) >= len(jobs)

    await eventually(all_answered, timeout_s=120)
    await asyncio.sleep(2)  # a duplicate, if any, would arrive now
    got = await results(aredis)
    per_job = Counter(r.parent for r in got)
    report("SIGKILL", len(jobs), victim_pending, per_job, jobs)
    assert per_job == Counter({j.id: 1 for j in jobs})  # zero lost, zero duplicated
    assert all(isinstance(r.payload, Transcript) for r in got)
    assert all(wer(reference("en_short"), r.payload.text) <= 0.2 for r in got)  # type: ignore[union-attr]
    assert (await aredis.xpending(STREAM, streams.group("stt")))["pending"] == 0


async def test_sigterm_finishes_current_job_and_leaves_the_rest(
    aredis: aioredis.Redis,
    start_worker,  # type: ignore[no-untyped-def]
) -> None:
    first = start_worker("first")
    await eventually(lambda: names_of_live(aredis), timeout_s=60)
    jobs = await submit(aredis, 4)
    await eventually(lambda: _pending_of(aredis, "first"), timeout_s=30)
    first.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(first.wait, 60) == 0
    assert "first" not in await names_of_live(aredis)  # heartbeat dropped on the way out
    done_by_first = len(await results(aredis))
    assert 1 <= done_by_first < len(jobs)
    assert (await aredis.xpending(STREAM, streams.group("stt")))["pending"] == 0
    start_worker("second")

    async def all_answered() -> bool:
        return len(await results(aredis)) >= len(jobs)

    await eventually(all_answered, timeout_s=120)
    per_job = Counter(r.parent for r in await results(aredis))
    report("SIGTERM", len(jobs), len(jobs) - done_by_first, per_job, jobs)
    assert per_job == Counter({j.id: 1 for j in jobs})


def report(fault: str, sent: int, in_flight: int, per_job: Counter, jobs: list[Envelope]) -> None:
    """Print the figures docs/RELIABILITY.md quotes (run with ``-s``)."""
    lost = sum(1 for j in jobs if per_job[j.id] == 0)
    duplicated = sum(max(per_job[j.id] - 1, 0) for j in jobs)
    print(f"\n{fault}: jobs={sent} affected={in_flight} lost={lost} duplicated={duplicated}")


async def _both_live(redis: aioredis.Redis) -> bool:
    return await names_of_live(redis) >= {"victim", "survivor"}


async def _pending_of(redis: aioredis.Redis, consumer: str) -> int:
    summary = await redis.xpending(STREAM, streams.group("stt"))
    counts = {c["name"].decode(): int(c["pending"]) for c in summary.get("consumers") or []}
    return counts.get(consumer, 0)
