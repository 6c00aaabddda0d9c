"""`pyparrot dlq list|replay|purge` against dead letters made by the real worker loop."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from shared import streams
from shared.messages import Envelope, TranslateRequest, pack, unpack
from shared.metrics import worker_metrics
from shared.settings import WorkerSettings
from shared.worker import JobFailed, WorkerSpec, run_worker
from tests.cli.helpers import cli_env, pyparrot

pytestmark = pytest.mark.redis

STREAM = streams.jobs("mt", "en-xx")


def refuse(job: Envelope) -> Iterator[TranslateRequest]:
    raise JobFailed("unsupported_pair", f"stand-in refuses {job.id}")
    yield  # pragma: no cover


async def test_list_replay_purge(aredis: aioredis.Redis, clean_redis: str, tmp_path: Path) -> None:
    jobs = [
        Envelope(payload=TranslateRequest(text=f"t{i}", source="en", target="xx")) for i in range(2)
    ]
    for job in jobs:
        await aredis.xadd(STREAM, {b"e": pack(job)})
    spec = WorkerSpec(component="mt", stream=STREAM, handle=refuse)
    settings = WorkerSettings(redis_url=clean_redis, worker_name="t", block_ms=10)
    await run_worker(aredis, spec, settings, worker_metrics(CollectorRegistry()), burst=True)
    env = cli_env(tmp_path, clean_redis)

    listed = json.loads(pyparrot("dlq", "list", "--json", env=env).stdout)
    assert [(r["stream"], r["code"], r["deliveries"]) for r in listed] == [
        (STREAM, "unsupported_pair", 1)
    ] * 2
    table = pyparrot("dlq", "list", env=env).stdout
    assert "dead letters (2)" in table and "unsupported_pair" in table

    one = pyparrot("dlq", "replay", "--stream", STREAM, "--id", listed[0]["id"], env=env)
    assert one.returncode == 0 and "replayed 1 job(s)" in one.stdout
    queued = await aredis.xrange(STREAM)
    assert [unpack(f[b"e"]).id for _id, f in queued] == [jobs[0].id]  # original bytes
    assert await aredis.xlen(streams.dead(STREAM)) == 1

    none = pyparrot("dlq", "purge", "--stream", "pp:jobs:mt:none", "--yes", env=env)
    assert "purged 0" in none.stdout
    purged = pyparrot("dlq", "purge", "--yes", env=env)
    assert purged.returncode == 0 and "purged 1 dead letter(s)" in purged.stdout
    assert await aredis.exists(streams.dead(STREAM)) == 0
    assert await aredis.xlen(STREAM) == 1
