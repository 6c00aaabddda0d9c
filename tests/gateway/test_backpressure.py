"""Backpressure: a stage holding ``max_backlog`` unfinished jobs gets no more; the client
hears 503 + Retry-After at once, and nothing already queued is dropped."""

from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from services.gateway.bridge import Backlogged, Bridge
from services.gateway.metrics import gateway_metrics
from services.gateway.settings import GatewaySettings
from shared import heartbeat, streams
from shared.heartbeat import WorkerInfo
from shared.messages import TranslateRequest, pack
from tests.apps import running_app
from tests.audio import DATA

pytestmark = pytest.mark.redis

STREAM = streams.jobs("stt", "tiny.en")
URL = "/v1/audio/transcriptions"
BOUND = 3


@pytest.fixture
async def bounded(clean_redis: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(
        redis_url=clean_redis, request_timeout_s=5, registry_cache_s=0, max_backlog=BOUND
    )
    async with running_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


async def fill(redis: aioredis.Redis, count: int) -> None:
    """Queue ``count`` jobs nobody consumes (a live heartbeat, but a stuck worker)."""
    info = WorkerInfo(component="stt", name="stuck", stream=STREAM, model="tiny.en")
    await heartbeat.beat(redis, info, 60)
    for _ in range(count):
        await redis.xadd(STREAM, {b"e": b"queued"})


async def test_full_stage_answers_503_with_retry_after_and_keeps_its_jobs(
    bounded: httpx.AsyncClient, aredis: aioredis.Redis
) -> None:
    await fill(aredis, BOUND)
    wav = (DATA / "en_short.wav").read_bytes()
    response = await bounded.post(URL, files={"file": ("a.wav", wav)})
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    assert response.json()["error"]["code"] == "overloaded"
    assert "stt" in response.json()["detail"]
    assert await aredis.xlen(STREAM) == BOUND  # refused, not queued; nothing trimmed


async def test_bridge_adds_below_the_bound_and_refuses_at_it(aredis: aioredis.Redis) -> None:
    bridge = Bridge(aredis, "bp", gateway_metrics(CollectorRegistry()))
    await fill(aredis, BOUND - 1)
    job = bridge.job(TranslateRequest(text="hi", source="en", target="de"), 5)
    await bridge._submit(STREAM, job, "stt", BOUND)
    assert await aredis.xlen(STREAM) == BOUND
    with pytest.raises(Backlogged):
        await bridge._submit(
            STREAM,
            bridge.job(TranslateRequest(text="hi", source="en", target="de"), 5),
            "stt",
            BOUND,
        )
    assert await aredis.xlen(STREAM) == BOUND
    entries = await aredis.xrange(STREAM)
    assert entries[-1][1][b"e"] == pack(job)


async def test_script_survives_a_flushed_script_cache(aredis: aioredis.Redis) -> None:
    """After a Redis restart the script cache is empty: EVALSHA must reload, not fail."""
    bridge = Bridge(aredis, "bp", gateway_metrics(CollectorRegistry()))
    await bridge._submit(
        STREAM, bridge.job(TranslateRequest(text="a", source="en", target="de"), 5), "stt", BOUND
    )
    await aredis.script_flush()
    await bridge._submit(
        STREAM, bridge.job(TranslateRequest(text="b", source="en", target="de"), 5), "stt", BOUND
    )
    assert await aredis.xlen(STREAM) == 2
