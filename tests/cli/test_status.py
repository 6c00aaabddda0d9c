"""`pyparrot status`: dead letters per stream and in total, in the table and in ``--json``,
made by the real worker loop on a real Redis."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from shared import streams
from shared.messages import Envelope, TranslateRequest, pack
from shared.metrics import worker_metrics
from shared.settings import WorkerSettings
from shared.worker import JobFailed, WorkerSpec, run_worker
from tests.cli.helpers import cli_env, pyparrot

pytestmark = pytest.mark.redis

POISONED = streams.jobs("mt", "en-xx")
HEALTHY = streams.jobs("mt", "en-yy")


def refuse(job: Envelope) -> Iterator[TranslateRequest]:
    raise JobFailed("unsupported_pair", f"stand-in refuses {job.id}")
    yield  # pragma: no cover


async def dead_letter(redis: aioredis.Redis, url: str, stream: str, jobs: int) -> None:
    """Put ``jobs`` jobs on ``stream`` and let a refusing worker dead-letter them all."""
    for i in range(jobs):
        job = Envelope(payload=TranslateRequest(text=f"t{i}", source="en", target="xx"))
        await redis.xadd(stream, {b"e": pack(job)})
    spec = WorkerSpec(component="mt", stream=stream, handle=refuse)
    settings = WorkerSettings(redis_url=url, worker_name="t", block_ms=10)
    await run_worker(redis, spec, settings, worker_metrics(CollectorRegistry()), burst=True)


def stream_line(table: str, stream: str) -> list[str]:
    """The cells of ``stream``'s row in the rendered table."""
    row = next(line for line in table.splitlines() if stream in line)
    return [cell.strip() for cell in row.strip("│┃ ").split("│")]


async def test_status_shows_dead_letters_per_stream_and_in_total(
    aredis: aioredis.Redis, clean_redis: str, tmp_path: Path
) -> None:
    await dead_letter(aredis, clean_redis, POISONED, jobs=3)
    await dead_letter(aredis, clean_redis, HEALTHY, jobs=0)
    await aredis.xadd(HEALTHY, {b"e": b"queued, not yet read"})
    env = cli_env(tmp_path, clean_redis)

    table = pyparrot("status", env=env)
    assert table.returncode == 0, table.stderr
    assert "dead letters" in table.stdout
    assert stream_line(table.stdout, POISONED) == [POISONED, "0", "0", "3"]
    assert stream_line(table.stdout, HEALTHY) == [HEALTHY, "1", "0", "0"]
    assert stream_line(table.stdout, "total") == ["total", "1", "0", "3"]
    assert "3 dead letter(s): see `pyparrot dlq list`" in table.stdout

    rows = json.loads(pyparrot("status", "--json", env=env).stdout)
    assert rows["dead_letters"] == 3
    assert {r["stream"]: r["dead"] for r in rows["streams"]} == {POISONED: 3, HEALTHY: 0}


async def test_status_says_when_there_are_no_dead_letters(
    aredis: aioredis.Redis, clean_redis: str, tmp_path: Path
) -> None:
    await dead_letter(aredis, clean_redis, HEALTHY, jobs=0)
    table = pyparrot("status", env=cli_env(tmp_path, clean_redis))
    assert "no dead letters" in table.stdout
    assert "dead letter(s)" not in table.stdout
