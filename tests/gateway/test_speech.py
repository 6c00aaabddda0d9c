"""/v1/audio/speech and /v1/voices through the real bus to the real Piper TTS handler:
formats, streaming, voice choice, errors, and the official openai client."""

import contextlib
import io
import threading
import wave
from collections.abc import AsyncIterator, Iterator
from functools import partial

import av
import httpx
import openai
import pytest
from fastapi import FastAPI

from services.tts.handler import handle
from services.tts.model import TtsModel
from services.tts.settings import TtsSettings
from shared import streams
from shared.messages import Envelope, SpeechChunk
from shared.worker import Handler, WorkerSpec
from tests.apps import running_workers
from tests.gateway.live_helpers import listening
from tests.services.test_tts import bundled_voice

pytestmark = [pytest.mark.redis, pytest.mark.model]

URL = "/v1/audio/speech"
TEXT = "Good morning. Streaming speech starts with the first sentence."


@pytest.fixture(scope="module")
def voice() -> tuple[TtsModel, TtsSettings]:
    return bundled_voice(), TtsSettings()


@contextlib.asynccontextmanager
async def serving(clean_redis: str, model: TtsModel, handler: Handler) -> AsyncIterator[None]:
    """A real consumer-group worker running ``handler`` for ``model``'s voice."""
    settings = TtsSettings(redis_url=clean_redis, worker_name="joe", block_ms=50)
    spec = WorkerSpec(
        component="tts",
        stream=streams.jobs("tts", model.name),
        handle=handler,
        model=model.name,
        languages=model.languages,
    )
    async with running_workers(clean_redis, [(spec, settings)]):
        yield


@pytest.fixture
async def tts_worker(clean_redis: str, voice: tuple[TtsModel, TtsSettings]) -> AsyncIterator[None]:
    """A real consumer-group worker running the real Piper handler."""
    model, settings = voice
    async with serving(clean_redis, model, partial(handle, model, settings)):
        yield


def wav_params(body: bytes) -> tuple[int, int, float]:
    """Sample rate, channels and duration of a streamed WAV (its sizes say 'unknown')."""
    with wave.open(io.BytesIO(body), "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        frames = wav.readframes(len(body))
    return rate, channels, len(frames) / (rate * channels * width)


def decoded_duration_s(body: bytes) -> float:
    with av.open(io.BytesIO(body)) as container:
        frames = list(container.decode(audio=0))
        return sum(f.samples for f in frames) / frames[0].sample_rate


@pytest.mark.usefixtures("tts_worker")
async def test_wav_is_valid_and_as_long_as_the_speech(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json={"input": TEXT, "response_format": "wav"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    rate, channels, duration_s = wav_params(response.content)
    assert (rate, channels) == (22_050, 1)
    assert 2.0 < duration_s < 8.0


@pytest.mark.usefixtures("tts_worker")
async def test_pcm_is_24khz_like_openai(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json={"input": TEXT, "response_format": "pcm"})
    assert response.status_code == 200, response.text
    assert response.headers["x-sample-rate"] == "24000"
    assert len(response.content) % 2 == 0
    assert 2.0 < len(response.content) / (2 * 24_000) < 8.0


@pytest.mark.usefixtures("tts_worker")
@pytest.mark.parametrize("fmt", ["mp3", "opus", "flac", "aac"])
async def test_compressed_formats_decode(client: httpx.AsyncClient, fmt: str) -> None:
    body = {"input": TEXT, "voice": "alloy", "speed": 1.5}
    if fmt != "mp3":  # mp3 is the default, as with OpenAI
        body["response_format"] = fmt
    response = await client.post(URL, json=body)
    assert response.status_code == 200, response.text
    assert 1.3 < decoded_duration_s(response.content) < 6.0


@pytest.mark.usefixtures("tts_worker")
@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"input": ""}, 422, "input"),
        ({"input": "   "}, 400, "no text"),
        ({"input": "Hi.", "voice": "darth"}, 400, "served voices: ['en_US-joe-medium']"),
        ({"input": "Hi.", "response_format": "ogg"}, 422, "response_format"),
        ({"input": "Hi.", "speed": 9}, 422, "speed"),
    ],
)
async def test_bad_requests_get_clear_errors(
    client: httpx.AsyncClient, body: dict[str, object], status: int, message: str
) -> None:
    response = await client.post(URL, json={"voice": "alloy", **body})
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


async def test_no_worker_gives_503(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json={"input": TEXT, "voice": "alloy"})
    assert response.status_code == 503
    assert "no text-to-speech worker" in response.json()["detail"]


async def test_first_sentence_is_sent_before_the_last_is_synthesised(
    app: FastAPI, clean_redis: str, voice: tuple[TtsModel, TtsSettings]
) -> None:
    model, settings = voice
    gate = threading.Event()

    def gated(job: Envelope) -> Iterator[SpeechChunk]:
        for chunk in handle(model, settings, job):
            yield chunk
            # The loop publishes a chunk when the next one is yielded: hold the third sentence.
            if chunk.index == 1:
                gate.wait(10)

    text = "First sentence. Second sentence. Third sentence."
    async with (
        serving(clean_redis, model, gated),
        listening(app) as host,  # a real socket: ASGITransport buffers whole responses
        httpx.AsyncClient(base_url=f"http://{host}") as client,
        client.stream("POST", URL, json={"input": text, "response_format": "wav"}) as response,
    ):
        try:
            assert response.status_code == 200
            body = response.aiter_raw()
            received = await anext(body)
            assert not gate.is_set()
            assert len(received) > 44 + 22_050  # header and at least half a second of speech
        finally:
            gate.set()
        received += b"".join([chunk async for chunk in body])
    assert wav_params(received)[2] > 2.0


@pytest.mark.usefixtures("tts_worker")
async def test_voices_lists_the_served_voice(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/voices")).json()
    assert body["data"] == [
        {
            "id": "en_US-joe-medium",
            "object": "voice",
            "language": "en",
            "languages": ["en"],
            "engine": "piper",
            "workers": 1,
        }
    ]
    assert "alloy" in body["aliases"]


@pytest.mark.usefixtures("tts_worker")
async def test_official_openai_client_works_unmodified(app: FastAPI) -> None:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    client = openai.AsyncOpenAI(api_key="unused", base_url="http://gateway/v1", http_client=http)
    async with client:
        speech = await client.audio.speech.create(
            model="tts-1", voice="alloy", input=TEXT, response_format="wav"
        )
        assert 2.0 < wav_params(speech.content)[2] < 8.0
        named = await client.audio.speech.create(
            model="tts-1",
            voice="en_US-joe-medium",
            input="Hello there.",  # type: ignore[arg-type]
        )
        assert decoded_duration_s(named.content) > 0.3
