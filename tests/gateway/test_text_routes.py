"""/v1/summarize through the bus to the real summarizer handler (extractive, and an LLM
backend that is down or a loopback stand-in server), and /v1/detect_language with the real
bundled py3langid model."""

import contextlib
from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest
import redis.asyncio as aioredis

from pyparrot import redis_server
from services.gateway import keys
from services.gateway.live.engine.store import SessionStore
from services.summarizer.handler import handle
from services.summarizer.model import ExtractiveModel, LlmModel, load_model
from services.summarizer.settings import SummarizerSettings
from shared import streams
from shared.worker import WorkerSpec
from tests.apps import running_workers
from tests.services.test_summarizer import KEY, LECTURE, OFF_TOPIC, SENTENCES, fake_llm

pytestmark = pytest.mark.redis

URL = "/v1/summarize"


@contextlib.asynccontextmanager
async def serving(
    clean_redis: str, settings: SummarizerSettings
) -> AsyncIterator[ExtractiveModel | LlmModel]:
    """A real consumer-group summarizer worker with the engine ``settings`` configure."""
    settings = settings.model_copy(update={"redis_url": clean_redis, "block_ms": 50})
    model = load_model(settings)
    spec = WorkerSpec(
        component="summarizer",
        stream=streams.jobs("summarizer", model.name),
        handle=partial(handle, model, settings),
        model=model.name,
    )
    try:
        async with running_workers(clean_redis, [(spec, settings)]):
            yield model
    finally:
        model.close()


@pytest.fixture
async def extractive_worker(clean_redis: str) -> AsyncIterator[None]:
    async with serving(clean_redis, SummarizerSettings(worker_name="sum-extractive")):
        yield


@pytest.fixture
async def unreachable_llm_worker(clean_redis: str) -> AsyncIterator[None]:
    """An LLM-backed worker whose server is down (nothing listens on its port)."""
    url = f"http://127.0.0.1:{redis_server.free_port()}/v1"
    settings = SummarizerSettings(worker_name="sum-llm", backend_url=url, backend_model="m")
    async with serving(clean_redis, settings):
        yield


@pytest.mark.usefixtures("extractive_worker")
async def test_summarizes_text(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json={"text": LECTURE, "max_sentences": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "extractive" and body["source_sentences"] == len(SENTENCES)
    assert KEY in body["summary"] and OFF_TOPIC not in body["summary"]
    assert len(body["summary"]) < len(LECTURE) / 2


@pytest.mark.usefixtures("extractive_worker")
async def test_summarizes_a_sessions_transcript_so_far(
    client: httpx.AsyncClient, aredis: aioredis.Redis
) -> None:
    # A session's summary needs read access to it (open mode: everyone is an admin).
    await SessionStore(aredis, 600, 100).create(session_id="lecture-1")
    key = keys.session_transcript("lecture-1")
    await aredis.rpush(key, *SENTENCES[:6])
    first = (await client.post(URL, json={"session_id": "lecture-1", "max_sentences": 2})).json()
    assert first["session_id"] == "lecture-1" and first["source_sentences"] == 6
    assert KEY in first["summary"] and not first["truncated"]
    await aredis.rpush(key, *SENTENCES[6:])  # the lecture goes on: the summary rolls with it
    later = (await client.post(URL, json={"session_id": "lecture-1", "ratio": 0.25})).json()
    assert later["source_sentences"] == len(SENTENCES) and KEY in later["summary"]
    assert "Strong consistency" in later["summary"]


@pytest.mark.usefixtures("extractive_worker")
async def test_unknown_session_gets_404(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json={"session_id": "nobody"})
    assert response.status_code == 404 and "no session" in response.json()["detail"]


@pytest.mark.usefixtures("extractive_worker")
@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"text": ""}, "text is empty"),
        ({"text": " \n\t"}, "text is empty"),
        ({}, "give either text or session_id"),
        ({"text": LECTURE, "session_id": "s1"}, "give either text or session_id"),
        ({"text": "a" * 200_001}, "at most 200000 characters"),
        ({"text": LECTURE, "ratio": 0}, "body.ratio"),
        ({"session_id": "../etc"}, "body.session_id"),
    ],
)
async def test_bad_bodies_get_422(
    client: httpx.AsyncClient, body: dict[str, object], fragment: str
) -> None:
    response = await client.post(URL, json=body)
    assert response.status_code == 422 and fragment in response.json()["detail"], response.text


async def test_no_summarizer_gives_503(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json={"text": LECTURE})
    assert response.status_code == 503 and "no summarization worker" in response.json()["detail"]


@pytest.mark.usefixtures("extractive_worker", "unreachable_llm_worker")
async def test_llm_preferred_and_its_unreachable_backend_gives_503(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(URL, json={"text": LECTURE})
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["error"]["code"] == "backend_unavailable"
    assert "unreachable" in response.json()["detail"]
    chosen = await client.post(URL, json={"text": LECTURE, "model": "extractive"})
    assert chosen.status_code == 200 and chosen.json()["method"] == "extractive"
    unknown = await client.post(URL, json={"text": LECTURE, "model": "gpt-9"})
    assert unknown.status_code == 400 and "served models: ['extractive', 'llm:m']" in unknown.text


async def test_abstractive_summary_through_the_gateway(
    client: httpx.AsyncClient, clean_redis: str
) -> None:
    with fake_llm() as llm:
        settings = SummarizerSettings(worker_name="sum-llm", backend_url=llm.url)
        async with serving(clean_redis, settings):
            response = await client.post(URL, json={"text": LECTURE, "max_sentences": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"] == llm.answer and body["method"] == "abstractive"
    assert body["model"] == "llm:tiny-test-llm"


@pytest.mark.parametrize(
    "text, code",
    [
        ("The weather is nice today and we are going to the park.", "en"),
        ("Eu gostaria de reservar uma mesa para duas pessoas.", "pt"),
        ("Mañana vamos a estudiar la replicación de los datos en la clase.", "es"),
        ("Ich möchte einen Tisch für zwei Personen reservieren.", "de"),
    ],
)
async def test_detects_the_language_of_text(
    client: httpx.AsyncClient, text: str, code: str
) -> None:
    response = await client.post("/v1/detect_language", json={"text": text})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["detected_language_code"] == code and body["confidence"] > 0.5, body
    assert body["alternatives"][0] == {"language_code": code, "confidence": body["confidence"]}


async def test_detection_among_given_languages(client: httpx.AsyncClient) -> None:
    text = "Me gustaría reservar una mesa para dos personas."
    body = {"text": text, "languages": ["pt", "es"]}
    result = (await client.post("/v1/detect_language", json=body)).json()
    assert result["detected_language_code"] == "es"
    assert {a["language_code"] for a in result["alternatives"]} == {"es", "pt"}
    assert sum(a["confidence"] for a in result["alternatives"]) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"text": ""}, 422, "body.text"),
        ({"text": "   "}, 422, "no letters"),
        ({"text": "12345 !!!"}, 422, "no letters"),
        ({}, 422, "body.text"),
        ({"text": "Hello there.", "languages": ["en", "xx"]}, 400, "unknown language codes ['xx']"),
    ],
)
async def test_bad_detect_requests_get_4xx(
    client: httpx.AsyncClient, body: dict[str, object], status: int, fragment: str
) -> None:
    response = await client.post("/v1/detect_language", json=body)
    assert response.status_code == status and fragment in response.json()["detail"], response.text
