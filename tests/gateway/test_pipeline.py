"""/v1/pipeline and /v1/audio/translations through the bus to the REAL stt (tiny.en), mt
(Bergamot EN<->PT) and tts (Piper joe) handlers, each in an in-process worker loop."""

import base64
import io
import wave
from collections.abc import AsyncIterator, Iterator
from functools import partial

import httpx
import openai
import pytest
from fastapi import FastAPI

from services.mt.__main__ import loops as mt_loops
from services.mt.model import MtModel
from services.mt.model import load_model as load_mt
from services.mt.settings import MtSettings
from services.stt.__main__ import worker_spec as stt_spec
from services.stt.model import SttModel
from services.stt.model import load_model as load_stt
from services.stt.settings import SttSettings
from services.tts.__main__ import worker_spec as tts_spec
from services.tts.settings import TtsSettings
from shared import streams
from shared.messages import Envelope, Transcript
from shared.multi import Loop
from shared.textnorm import wer
from shared.worker import WorkerSpec
from tests.apps import running_workers
from tests.audio import DATA, reference
from tests.services.test_tts import bundled_voice

pytestmark = [pytest.mark.redis, pytest.mark.model]

URL = "/v1/pipeline"


@pytest.fixture(scope="module")
def tiny() -> SttModel:
    return load_stt(SttSettings(model="tiny.en"))


@pytest.fixture(scope="module")
def bergamot() -> MtModel:
    return load_mt(MtSettings())


def clip(name: str = "en_lecture") -> dict[str, tuple[str, bytes]]:
    return {"file": (f"{name}.wav", (DATA / f"{name}.wav").read_bytes())}


def stt_loop(redis_url: str, tiny: SttModel) -> Loop:
    """The stt worker with the real tiny.en model."""
    settings = SttSettings(redis_url=redis_url, worker_name="stt", block_ms=50)
    return stt_spec(tiny, settings), settings


def real_loops(redis_url: str, tiny: SttModel, bergamot: MtModel) -> list[Loop]:
    """The stt, mt (one loop per pair) and tts workers, each with its real model."""
    mt_settings = MtSettings(redis_url=redis_url, worker_name="mt", block_ms=50)
    tts_settings = TtsSettings(redis_url=redis_url, worker_name="tts", block_ms=50)
    voice = bundled_voice()
    tts = tts_spec(voice, tts_settings)
    return [stt_loop(redis_url, tiny), *mt_loops(bergamot, mt_settings), (tts, tts_settings)]


@pytest.fixture
async def workers(clean_redis: str, tiny: SttModel, bergamot: MtModel) -> AsyncIterator[None]:
    async with running_workers(clean_redis, real_loops(clean_redis, tiny, bergamot)):
        yield


def wav_duration_s(data: bytes) -> tuple[int, float]:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getframerate(), wav.getnframes() / wav.getframerate()


@pytest.mark.usefixtures("workers")
async def test_lecture_is_transcribed_translated_and_spoken(client: httpx.AsyncClient) -> None:
    data = {"target_languages": "pt, de ,en", "speak": "true"}
    response = await client.post(URL, files=clip(), data=data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["language"] == "en"
    assert wer(reference("en_lecture"), body["transcript"]) <= 0.10, body["transcript"]
    translations, errors = body["translations"], body["errors"]
    assert "distribuídos" in translations["pt"] and "replicação" in translations["pt"], body
    assert translations["en"] == body["transcript"]  # already in English: no MT job
    # No EN->DE pair is served, and the only voice speaks English: per-language errors.
    assert errors["de"]["stage"] == "mt" and errors["de"]["code"] == "unsupported_pair"
    assert "served pairs: ['en-pt', 'pt-en']" in errors["de"]["message"]
    assert errors["pt"]["stage"] == "tts" and errors["pt"]["code"] == "no_voice"
    assert "de" not in translations and set(errors) == {"de", "pt"}
    assert set(body["speech"]) == {"en"} and body["speech_format"] == "wav"
    rate_hz, duration_s = wav_duration_s(base64.b64decode(body["speech"]["en"]))
    assert rate_hz == 22_050 and duration_s > 8.0


@pytest.mark.usefixtures("workers")
async def test_without_speak_there_is_no_speech(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, files=clip("en_short"), data={"target_languages": "pt"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "speech" not in body and body["errors"] == {} and body["translations"]["pt"]


@pytest.mark.usefixtures("workers")
async def test_silence_gives_a_per_language_error(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, files=clip("silence_3s"), data={"target_languages": "pt"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["transcript"] == "" and body["errors"]["pt"]["code"] == "empty_transcript"


@pytest.mark.usefixtures("workers")
@pytest.mark.parametrize(
    "files, data, status, fragment",
    [
        (clip(), {"target_languages": "pt,portuguese"}, 400, "not language codes: ['portuguese']"),
        (
            clip(),
            {"target_languages": ",".join(f"a{c}" for c in "bcdefghijklmnopqrs")},
            400,
            "at most",
        ),
        (clip(), {"language": "en,pt"}, 400, "one spoken language"),
        (clip(), {"language": "pt"}, 400, "no running model transcribes language 'pt'"),
        ({"file": ("empty.wav", b"")}, {"target_languages": "pt"}, 400, "empty"),
        ({}, {"target_languages": "pt"}, 422, "body.file"),
    ],
)
async def test_bad_requests_get_4xx(
    client: httpx.AsyncClient,
    files: dict[str, tuple[str, bytes]],
    data: dict[str, str],
    status: int,
    fragment: str,
) -> None:
    response = await client.post(URL, files=files, data=data)
    assert response.status_code == status and fragment in response.json()["detail"], response.text


@pytest.mark.usefixtures("workers")
# openai 3.x marks audio.translations.create "deprecated" (the endpoint still exists): the
# client's own warning, not ours.
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
async def test_speech_translation_with_tiny_en_through_the_openai_client(app: FastAPI) -> None:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    client = openai.AsyncOpenAI(api_key="unused", base_url="http://gateway/v1", http_client=http)
    async with client:
        result = await client.audio.translations.create(
            file=("en_lecture.wav", (DATA / "en_lecture.wav").read_bytes()), model="whisper-1"
        )
    # Only the English model is live: English speech comes back as its English transcript.
    assert wer(reference("en_lecture"), result.text) <= 0.10, result.text


def standin_base(seen: list[str], envelope: Envelope) -> Iterator[Transcript]:
    """Stand-in multilingual model for routing: reports the task it was asked to do."""
    seen.append(envelope.payload.task)  # type: ignore[union-attr]
    yield Transcript(text="Good morning.", language="es", duration_s=1.0, model="base")


async def test_speech_translation_prefers_a_live_multilingual_model(
    client: httpx.AsyncClient, clean_redis: str, tiny: SttModel
) -> None:
    seen: list[str] = []
    settings = SttSettings(redis_url=clean_redis, worker_name="base", block_ms=50)
    spec = WorkerSpec(
        component="stt",
        stream=streams.jobs("stt", "base"),
        handle=partial(standin_base, seen),
        model="base",
        languages=["en", "es", "pt"],
    )
    loops = [stt_loop(clean_redis, tiny), (spec, settings)]
    async with running_workers(clean_redis, loops):
        response = await client.post(
            "/v1/audio/translations", files=clip("es_short"), data={"response_format": "text"}
        )
    assert response.status_code == 200 and response.text == "Good morning.", response.text
    assert seen == ["translate"]
