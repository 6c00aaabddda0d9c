"""The TTS process's serving loop (``serve_voices``, what ``python -m services.tts`` runs)
through the real bus to a real gateway: one stream and heartbeat per voice, each saying
which engine speaks it, and speech in Portuguese and Spanish from the espeak-ng engine."""

import asyncio
import contextlib
import io
import wave
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from services.gateway.settings import GatewaySettings
from services.tts.__main__ import serve_voices
from services.tts.engine import TtsEngine
from services.tts.model import load_models
from services.tts.settings import TtsSettings
from shared import heartbeat, streams
from shared.metrics import worker_metrics
from tests.apps import running_app
from tests.polling import eventually
from tests.services.test_tts import bundled_voice

pytestmark = [pytest.mark.redis, pytest.mark.model]


async def heartbeat_count_is(redis: aioredis.Redis, count: int) -> bool:
    return len(await heartbeat.live_workers(redis)) == count


@contextlib.asynccontextmanager
async def serving(
    redis_url: str, engines: list[TtsEngine], settings: TtsSettings
) -> AsyncIterator[aioredis.Redis]:
    """``serve_voices`` running until the block ends, once every voice's heartbeat is up."""
    redis = aioredis.Redis.from_url(redis_url)
    stop = asyncio.Event()
    metrics = worker_metrics(CollectorRegistry())
    task = asyncio.create_task(serve_voices(redis, engines, settings, metrics, stop))
    try:
        await eventually(lambda: heartbeat_count_is(redis, len(engines)), timeout_s=10)
        yield redis
    finally:
        stop.set()
        await task
        await redis.aclose()


@pytest.fixture(scope="module")
def espeak() -> list[TtsEngine]:
    return load_models(TtsSettings(engine="espeak", espeak_voice="pt-br,es"))


@pytest.fixture
async def client(clean_redis: str, espeak: list[TtsEngine]) -> AsyncIterator[httpx.AsyncClient]:
    """A real gateway, and one TTS process serving the espeak pt-br and es voices."""
    settings = TtsSettings(redis_url=clean_redis, worker_name="tts", block_ms=50)
    gateway = GatewaySettings(redis_url=clean_redis, request_timeout_s=5, registry_cache_s=0)
    async with serving(clean_redis, espeak, settings), running_app(gateway) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


async def test_voices_lists_each_espeak_voice_with_language_and_engine(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/v1/voices")).json()
    assert [(v["id"], v["language"], v["engine"], v["workers"]) for v in body["data"]] == [
        ("espeak-es", "es", "espeak", 1),
        ("espeak-pt-br", "pt", "espeak", 1),
    ]


@pytest.mark.parametrize(
    "voice, text",
    [
        ("espeak-pt-br", "Bom dia. Hoje vamos falar sobre sistemas distribuídos."),
        ("espeak-es", "Buenos días. Hoy hablamos de sistemas distribuidos."),
    ],
)
async def test_speech_in_each_served_language(
    client: httpx.AsyncClient, voice: str, text: str
) -> None:
    body = {"input": text, "voice": voice, "response_format": "wav"}
    response = await client.post("/v1/audio/speech", json=body)
    assert response.status_code == 200, response.text
    with wave.open(io.BytesIO(response.content), "rb") as wav:
        rate, frames = wav.getframerate(), wav.readframes(len(response.content))
    assert rate == 22_050
    assert 1.5 < len(frames) / (2 * rate) < 6.0  # 8 words at 175 a minute, with pauses


async def test_a_voice_no_process_serves_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/audio/speech", json={"input": "Hi.", "voice": "espeak-de"})
    assert response.status_code == 400
    assert "['espeak-es', 'espeak-pt-br']" in response.json()["detail"]


async def test_one_heartbeat_per_voice_and_one_for_a_single_piper_voice(
    clean_redis: str, espeak: list[TtsEngine]
) -> None:
    settings = TtsSettings(redis_url=clean_redis, worker_name="w1", block_ms=50)
    async with serving(clean_redis, espeak, settings) as redis:
        live = await heartbeat.live_workers(redis)
    # Several loops in one process: each its own consumer name, suffixed with the voice.
    assert [(w.name, w.stream, w.extra) for w in live] == [
        ("w1:espeak-es", streams.jobs("tts", "espeak-es"), {"engine": "espeak"}),
        ("w1:espeak-pt-br", streams.jobs("tts", "espeak-pt-br"), {"engine": "espeak"}),
    ]
    async with serving(clean_redis, [bundled_voice()], settings) as redis:
        (joe,) = await heartbeat.live_workers(redis)
    assert (joe.name, joe.model, joe.extra) == ("w1", "en_US-joe-medium", {"engine": "piper"})
