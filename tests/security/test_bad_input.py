"""Bad input is the client's to fix: answered at once as a 4xx, never retried and never
dead-lettered (that stream is for failures of ours). A real TTS worker loop (the bundled
Piper voice) on a real Redis, and the real gateway in front of it."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from services.gateway.bridge import Bridge
from services.gateway.errors import worker_error
from services.gateway.metrics import gateway_metrics
from services.gateway.settings import GatewaySettings
from services.tts.__main__ import serve_voices
from services.tts.settings import TtsSettings
from shared import bus, heartbeat, streams
from shared.messages import ErrorResult, SynthesizeRequest
from shared.metrics import worker_metrics
from tests.apps import running_app
from tests.polling import eventually
from tests.services.test_tts import bundled_voice

pytestmark = [pytest.mark.redis, pytest.mark.model]

VOICE = "en_US-joe-medium"
STREAM = streams.jobs("tts", VOICE)


@pytest.fixture
async def tts_worker(clean_redis: str) -> AsyncIterator[CollectorRegistry]:
    """A TTS worker loop serving the bundled voice, with the production claim delay: a job
    left pending would only come back after 30 s. Yields the worker's metrics registry."""
    settings = TtsSettings(
        redis_url=clean_redis,
        worker_name="tts",
        block_ms=50,
        claim_idle_ms=30_000,
        max_text_chars=500,
    )
    registry = CollectorRegistry()
    redis = bus.client(clean_redis)
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve_voices(redis, [bundled_voice()], settings, worker_metrics(registry), stop)
    )

    async def beating() -> bool:
        return len(await heartbeat.live_workers(redis)) == 1

    try:
        await eventually(beating, timeout_s=10)
        yield registry
    finally:
        stop.set()
        await task
        await redis.aclose()


@pytest.fixture
async def bridge(aredis: aioredis.Redis) -> AsyncIterator[Bridge]:
    """The gateway's job bridge alone: it submits what it is given, unchecked, as a client
    of the bus other than this gateway (an older one, a script) could."""
    bridge = Bridge(aredis, "badinput", gateway_metrics(CollectorRegistry()))
    await bridge.start()
    yield bridge
    await bridge.stop()


def outcome(registry: CollectorRegistry, name: str) -> float:
    value = registry.get_sample_value("pyparrot_jobs_total", {"component": "tts", "outcome": name})
    return value or 0.0


@pytest.mark.parametrize(
    "request_, code, status",
    [
        (SynthesizeRequest(text="Hello\x00world."), "invalid_text", 400),
        (SynthesizeRequest(text="Ring \x07 the bell."), "invalid_text", 400),
        (SynthesizeRequest(text="   "), "empty_text", 400),
        (SynthesizeRequest(text="Hello.", language="de"), "unsupported_language", 400),
        (SynthesizeRequest(text="Hello.", voice="nobody"), "unknown_voice", 400),
        (SynthesizeRequest(text="word " * 200), "text_too_long", 413),
    ],
)
async def test_worker_answers_bad_input_at_once_and_dead_letters_nothing(
    tts_worker: CollectorRegistry,
    bridge: Bridge,
    aredis: aioredis.Redis,
    request_: SynthesizeRequest,
    code: str,
    status: int,
) -> None:
    job = bridge.job(request_, 10)
    # One second: a job treated as transient would stay pending for the 30 s claim delay.
    reply = await bridge.request(STREAM, job, "tts", timeout_s=1.0)
    assert isinstance(reply.payload, ErrorResult)
    assert (reply.payload.code, reply.payload.stage) == (code, "tts")
    assert worker_error("tts", reply.payload).status == status

    async def settled() -> bool:  # on a cluster the reply goes out before XACK + XDEL
        return await aredis.xlen(STREAM) == 0 and outcome(tts_worker, "rejected") == 1

    await eventually(settled, timeout_s=2)  # acknowledged and deleted, not left pending
    assert await aredis.xlen(streams.dead(STREAM)) == 0
    assert outcome(tts_worker, "retry") == outcome(tts_worker, "dead") == 0


async def test_a_good_job_after_a_bad_one_is_spoken(
    tts_worker: CollectorRegistry, bridge: Bridge
) -> None:
    bad = await bridge.request(STREAM, bridge.job(SynthesizeRequest(text="a\x00b"), 10), "tts", 1)
    assert isinstance(bad.payload, ErrorResult)
    good = bridge.job(SynthesizeRequest(text="Good morning."), 10)
    chunks = [r async for r in bridge.stream_results(STREAM, good, "tts", timeout_s=30)]
    assert [c.kind for c in chunks] == ["tts.audio"] and chunks[-1].payload.last  # type: ignore[union-attr]


@contextlib.asynccontextmanager
async def gateway(url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(redis_url=url, request_timeout_s=30, registry_cache_s=0)
    async with running_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/audio/speech", {"model": "tts-1", "input": "Hello\x00world.", "voice": "alloy"}),
        ("/v1/audio/speech", {"model": "tts-1", "input": "Escape \x1b[31m", "voice": VOICE}),
    ],
)
async def test_gateway_refuses_control_characters_before_any_job(
    tts_worker: CollectorRegistry, clean_redis: str, path: str, body: dict[str, object]
) -> None:
    async with gateway(clean_redis) as http:
        response = await http.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_text"
    assert "control character" in response.json()["detail"]
    assert outcome(tts_worker, "rejected") == outcome(tts_worker, "done") == 0  # no job sent
