"""/v1/audio/transcriptions through the real bus to a stand-in worker: formats, decoding,
errors, and the official openai client."""

import httpx
import openai
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from shared import heartbeat, streams
from shared.heartbeat import WorkerInfo
from tests.audio import DATA, read_pcm
from tests.gateway.conftest import encode

pytestmark = pytest.mark.redis

URL = "/v1/audio/transcriptions"
LECTURE_S = read_pcm("en_lecture")[1].duration_s(read_pcm("en_lecture")[0])


def wav(name: str = "en_lecture") -> dict[str, tuple[str, bytes]]:
    return {"file": (f"{name}.wav", (DATA / f"{name}.wav").read_bytes())}


@pytest.mark.usefixtures("stt_worker")
async def test_verbose_json_carries_language_duration_segments_words(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        URL,
        files=wav(),
        data={
            "model": "whisper-1",
            "response_format": "verbose_json",
            "timestamp_granularities[]": ["word", "segment"],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["language"] == "en"
    assert body["duration"] == pytest.approx(LECTURE_S, abs=0.01)
    assert body["text"] == f"{LECTURE_S:.2f} seconds"
    assert body["segments"][0]["end"] == pytest.approx(LECTURE_S, abs=0.01)
    assert body["words"][0]["end"] == pytest.approx(LECTURE_S, abs=0.01)


@pytest.mark.usefixtures("stt_worker")
@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt"])
async def test_response_formats(client: httpx.AsyncClient, fmt: str) -> None:
    response = await client.post(URL, files=wav(), data={"response_format": fmt})
    assert response.status_code == 200, response.text
    text = f"{LECTURE_S:.2f} seconds"
    end = f"00:00:{int(LECTURE_S):02d}{{}}{round(LECTURE_S % 1 * 1000):03d}"
    expected = {
        "text": text,
        "srt": f"1\n00:00:00,000 --> {end.format(',')}\n{text}\n",
        "vtt": f"WEBVTT\n\n00:00:00.000 --> {end.format('.')}\n{text}\n",
    }
    if fmt == "json":
        assert response.json() == {"text": text}
    else:
        assert response.text == expected[fmt]


@pytest.mark.usefixtures("stt_worker")
@pytest.mark.parametrize(
    "container, codec, name",
    [
        ("flac", "flac", "a.flac"),
        ("ogg", "libopus", "a.ogg"),
        ("mp3", "libmp3lame", "a.mp3"),
        ("webm", "libopus", "a.webm"),
    ],
)
async def test_decodes_common_formats(
    client: httpx.AsyncClient, container: str, codec: str, name: str
) -> None:
    pcm, fmt = read_pcm("en_short")
    data = encode(pcm, fmt.sample_rate_hz, container, codec)
    response = await client.post(
        URL, files={"file": (name, data)}, data={"response_format": "verbose_json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["duration"] == pytest.approx(fmt.duration_s(pcm), abs=0.1)


@pytest.mark.usefixtures("stt_worker")
@pytest.mark.parametrize(
    "files, message",
    [
        ({"file": ("empty.wav", b"")}, "empty"),
        ({"file": ("notes.txt", b"this is not audio at all " * 40)}, "decode"),
        ({"file": ("cut.wav", (DATA / "en_short.wav").read_bytes()[:30])}, ""),
    ],
)
async def test_bad_uploads_get_400_with_a_message(
    client: httpx.AsyncClient, files: dict[str, tuple[str, bytes]], message: str
) -> None:
    response = await client.post(URL, files=files)
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]
    assert response.json()["error"]["code"] == "invalid_audio"


@pytest.mark.usefixtures("stt_worker")
@pytest.mark.parametrize(
    "data, status, message",
    [
        ({"response_format": "xml"}, 422, "response_format"),
        ({"model": "whisper-9000"}, 400, "served models"),
        ({"language": "ja"}, 400, "language 'ja'"),
        ({"prompt": "fail"}, 400, "stand-in refuses"),  # the worker's JobFailed comes back
    ],
)
async def test_bad_requests_get_clear_errors(
    client: httpx.AsyncClient, data: dict[str, str], status: int, message: str
) -> None:
    response = await client.post(URL, files=wav("en_short"), data=data)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


async def test_no_worker_gives_503_with_retry_after(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, files=wav("en_short"))
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert "no speech-to-text worker" in response.json()["detail"]


async def test_unanswered_job_gives_504(
    app: FastAPI, client: httpx.AsyncClient, aredis: aioredis.Redis
) -> None:
    # A worker that advertises itself but never reads its stream.
    info = WorkerInfo(
        component="stt",
        name="mute",
        stream=streams.jobs("stt", "tiny.en"),
        model="tiny.en",
        languages=["en"],
    )
    await heartbeat.beat(aredis, info, 30)
    app.state.core.settings.request_timeout_s = 0.3
    response = await client.post(URL, files=wav("en_short"))
    assert response.status_code == 504
    assert "no stt result" in response.json()["detail"]


async def test_upload_over_the_limit_gets_413(app: FastAPI, client: httpx.AsyncClient) -> None:
    app.state.core.settings.max_upload_bytes = 1_024
    response = await client.post(URL, files=wav("en_short"))
    assert response.status_code == 413


@pytest.mark.usefixtures("stt_worker")
async def test_official_openai_client_works_unmodified(app: FastAPI) -> None:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    client = openai.AsyncOpenAI(api_key="unused", base_url="http://gateway/v1", http_client=http)
    async with client:
        result = await client.audio.transcriptions.create(
            file=("en_lecture.wav", (DATA / "en_lecture.wav").read_bytes()),
            model="whisper-1",
            response_format="verbose_json",
            timestamp_granularities=["word"],
        )
        assert result.text == f"{LECTURE_S:.2f} seconds"
        assert result.language == "en" and result.words
        models = await client.models.list()
        assert {m.id for m in models.data} >= {"whisper-1", "tiny.en"}
