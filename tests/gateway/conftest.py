"""A real gateway app (lifespan included) on the test Redis, with a stand-in STT worker; and
for the live-session tests, a gateway behind a real socket with the real STT and MT workers."""

import io
from collections.abc import AsyncIterator, Iterator

import av
import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from services.gateway.settings import GatewaySettings
from services.stt.model import SttModel
from services.stt.model import load_model as load_stt
from services.stt.settings import SttSettings
from shared import streams
from shared.messages import Envelope, Segment, Transcript, Word
from shared.settings import WorkerSettings
from shared.worker import JobFailed, WorkerSpec
from tests.apps import running_app, running_workers
from tests.gateway.live_helpers import listening, live_gateway_settings, live_loops


def standin_stt(envelope: Envelope) -> Iterator[Transcript]:
    """Stand-in model for gateway plumbing: reports the duration of the audio it received."""
    req = envelope.payload
    duration = req.audio_format.duration_s(req.audio)  # type: ignore[union-attr]
    if req.prompt == "fail":  # type: ignore[union-attr]
        raise JobFailed("empty_audio", "stand-in refuses this audio")
    text = f"{duration:.2f} seconds"
    words = [Word(start_s=0.0, end_s=duration, word=text, probability=1.0)]
    yield Transcript(
        text=text,
        language=req.language or "en",  # type: ignore[union-attr]
        duration_s=duration,
        segments=[
            Segment(
                id=0,
                start_s=0.0,
                end_s=duration,
                text=text,
                words=words if req.word_timestamps else [],
            )
        ],  # type: ignore[union-attr]
        model="tiny.en",
    )


@pytest.fixture
async def app(clean_redis: str) -> AsyncIterator[FastAPI]:
    settings = GatewaySettings(redis_url=clean_redis, request_timeout_s=5, registry_cache_s=0)
    async with running_app(settings) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


@pytest.fixture
async def stt_worker(clean_redis: str) -> AsyncIterator[None]:
    """A real consumer-group worker with the stand-in model, serving 'tiny.en'."""
    settings = WorkerSettings(redis_url=clean_redis, worker_name="standin", block_ms=50)
    spec = WorkerSpec(
        component="stt",
        stream=streams.jobs("stt", "tiny.en"),
        handle=standin_stt,
        model="tiny.en",
        languages=["en", "de"],
    )
    async with running_workers(clean_redis, [(spec, settings)]):
        yield


def encode(pcm16: bytes, rate_hz: int, container: str, codec: str) -> bytes:
    """Encode mono s16 PCM into another format with PyAV (to test decoding)."""
    out = io.BytesIO()
    samples = np.frombuffer(pcm16, dtype="<i2").reshape(1, -1)
    with av.open(out, mode="w", format=container) as box:
        stream = box.add_stream(codec, rate=48_000 if codec == "libopus" else rate_hz)
        stream.layout = "mono"  # type: ignore[attr-defined]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate_hz
        resampler = av.AudioResampler(
            format=stream.format.name,
            layout="mono",  # type: ignore[attr-defined]
            rate=stream.rate,
        )  # type: ignore[attr-defined]
        for chunk in resampler.resample(frame):
            box.mux(stream.encode(chunk))  # type: ignore[attr-defined]
        box.mux(stream.encode(None))  # type: ignore[attr-defined]
    return out.getvalue()


@pytest.fixture(scope="module")
def live_whisper() -> tuple[SttModel, SttSettings]:
    return load_stt(SttSettings()), SttSettings()


@pytest.fixture
async def live_gateway(clean_redis: str) -> AsyncIterator[tuple[FastAPI, str]]:
    async with running_app(live_gateway_settings(clean_redis)) as app, listening(app) as address:
        yield app, address


@pytest.fixture
async def live_workers(
    clean_redis: str, live_whisper: tuple[SttModel, SttSettings]
) -> AsyncIterator[None]:
    """The real STT (tiny.en) and MT (Bergamot en-pt) handlers behind consumer groups."""
    async with running_workers(clean_redis, live_loops(clean_redis, live_whisper)):
        yield
