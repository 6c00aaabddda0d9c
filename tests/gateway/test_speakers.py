"""Enrolled people and diarized uploads through a real gateway, the real speaker worker and
real Whisper (tiny.en) on a real Redis: enrol two readers from two sentences each, recognise
their other sentences, refuse a stranger, bad enrolments, and other keys; ``diarize=true``
labels each segment of a two-reader conversation with its speaker."""

import itertools
import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from services.gateway.keys import session_events
from services.gateway.settings import GatewaySettings
from services.speaker.__main__ import worker_spec as speaker_spec
from services.speaker.model import SpeakerModel
from services.speaker.model import load_model as load_speaker
from services.speaker.settings import SpeakerSettings
from services.stt.__main__ import worker_spec as stt_spec
from services.stt.model import SttModel
from services.stt.settings import SttSettings
from shared.admin import keystore
from shared.audio import PCM16, pcm_to_wav
from tests.apps import running_app, running_workers

pytestmark = [pytest.mark.redis, pytest.mark.model]

DATA = Path(__file__).parents[1] / "data"
REAL = DATA / "real"


def clip(name: str) -> bytes:
    return (REAL / f"{name}.wav").read_bytes()


def pcm(name: str) -> bytes:
    with wave.open(str(REAL / f"{name}.wav"), "rb") as f:
        return f.readframes(f.getnframes())


def upload(*names: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (f"{n}.wav", clip(n), "audio/wav")) for n in names]


@pytest.fixture(scope="module")
def speaker_model() -> SpeakerModel:
    return load_speaker(SpeakerSettings())


@pytest.fixture
async def keys(aredis: aioredis.Redis) -> tuple[str, str]:
    mine, _ = await keystore.create(aredis, "presenter", "ana@example.com")
    theirs, _ = await keystore.create(aredis, "presenter", "bo@example.com")
    return mine, theirs


@pytest.fixture
async def gateway(
    clean_redis: str,
    keys: tuple[str, str],
    speaker_model: SpeakerModel,
    live_whisper: tuple[SttModel, SttSettings],
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two clients of one gateway (two API-key identities), with STT and speaker workers."""
    settings = GatewaySettings(
        redis_url=clean_redis, request_timeout_s=30, registry_cache_s=0, auth_cache_s=0
    )
    model, stt_settings = live_whisper
    loops = [
        (stt_spec(model, stt_settings), SttSettings(redis_url=clean_redis, block_ms=50)),
        (
            speaker_spec(speaker_model, SpeakerSettings()),
            SpeakerSettings(redis_url=clean_redis, block_ms=50),
        ),
    ]
    async with running_app(settings) as app, running_workers(clean_redis, loops):
        transport = httpx.ASGITransport(app=app)

        def client(key: str) -> httpx.AsyncClient:
            headers = {"Authorization": f"Bearer {key}"}
            return httpx.AsyncClient(
                transport=transport, base_url="http://gateway", headers=headers, timeout=60
            )

        async with client(keys[0]) as mine, client(keys[1]) as theirs:
            yield mine, theirs


async def enrol(client: httpx.AsyncClient, who: str, name: str) -> str:
    response = await client.post(
        "/v1/speakers",
        files=upload(f"{who}_snt1", f"{who}_snt2"),
        data={"name": name, "description": "reads Harvard sentences", "relationship": "friend"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == name and body["speech_s"] >= 2.0 and "embedding" not in body
    return str(body["person_id"])


async def identify(client: httpx.AsyncClient, name: str, data: bytes | None = None) -> dict:
    files = {"file": (f"{name}.wav", data or clip(name), "audio/wav")}
    response = await client.post("/v1/speakers/identify", files=files)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_enrolled_readers_are_recognised_and_strangers_are_not(
    gateway: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    mine, theirs = gateway
    ids = {"spk1": await enrol(mine, "spk1", "Alice"), "spk2": await enrol(mine, "spk2", "Bob")}
    listed = (await mine.get("/v1/speakers")).json()["data"]
    assert [p["name"] for p in listed] == ["Alice", "Bob"]
    for who in ("spk1", "spk2"):
        for i in (3, 4, 5, 6):
            found = await identify(mine, f"{who}_snt{i}")
            assert found["known"] and found["person"]["person_id"] == ids[who], found
    stranger = (DATA / "en_short.wav").read_bytes()  # an espeak-ng voice nobody enrolled
    found = await identify(mine, "stranger", stranger)
    assert found == {**found, "known": False, "person": None}
    # Another key sees nobody, recognises nobody and deletes nothing.
    assert (await theirs.get("/v1/speakers")).json()["data"] == []
    assert not (await identify(theirs, "spk1_snt3"))["known"]
    refused = await theirs.delete(f"/v1/speakers/{ids['spk1']}")
    assert refused.status_code == 404
    # Deleted: no longer recognised.
    assert (await mine.delete(f"/v1/speakers/{ids['spk1']}")).status_code == 200
    assert not (await identify(mine, "spk1_snt3"))["known"]
    assert [p["name"] for p in (await mine.get("/v1/speakers")).json()["data"]] == ["Bob"]


@pytest.mark.parametrize(
    "audio, problem",
    [
        ((DATA / "silence_3s.wav").read_bytes(), "no speech"),
        ((REAL / "noise2.wav").read_bytes(), "no speech"),
        (pcm_to_wav(pcm("spk2_snt2")[: 2 * 16_000 * 3 // 2], PCM16), "only 1."),
    ],
    ids=["silence", "noise", "short"],
)
async def test_enrolling_without_enough_speech_is_a_400_that_says_why(
    gateway: tuple[httpx.AsyncClient, httpx.AsyncClient], audio: bytes, problem: str
) -> None:
    mine, _ = gateway
    response = await mine.post(
        "/v1/speakers", files={"file": ("x.wav", audio, "audio/wav")}, data={"name": "Nobody"}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "insufficient_speech" and problem in error["message"]
    assert (await mine.get("/v1/speakers")).json()["data"] == []


async def test_diarized_upload_labels_each_reader_and_names_enrolled_people(
    gateway: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    mine, _ = gateway
    await enrol(mine, "spk1", "Alice")
    order = ["spk1_snt3", "spk2_snt3", "spk1_snt4", "spk2_snt4"]
    gap = bytes(2 * 16_000 // 2)
    conversation = pcm_to_wav(gap.join(pcm(n) for n in order), PCM16)
    files = {"file": ("talk.wav", conversation, "audio/wav")}
    response = await mine.post(
        "/v1/audio/transcriptions",
        files=files,
        data={
            "diarize": "true",
            "response_format": "verbose_json",
            "timestamp_granularities[]": ["word", "segment"],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    labels = [s["speaker"] for s in body["segments"]]
    assert set(labels) == {"S1", "S2"} and labels[0] == "S1", body["segments"]
    turns = [who for who, _ in itertools.groupby(w["speaker"] for w in body["words"])]
    assert turns == ["S1", "S2", "S1", "S2"], body["words"]  # the four sentences, word by word
    people = {s["speaker"]: s["person"] for s in body["speakers"]}
    assert people["S1"]["name"] == "Alice" and people["S2"] is None
    srt = await mine.post(
        "/v1/audio/transcriptions", files=files, data={"diarize": "true", "response_format": "srt"}
    )
    assert "Alice: " in srt.text and "S2: " in srt.text
    plain = await mine.post(
        "/v1/audio/transcriptions", files=files, data={"response_format": "verbose_json"}
    )
    assert all("speaker" not in s for s in plain.json()["segments"])


async def test_no_speaker_worker_is_a_503(clean_redis: str, keys: tuple[str, str]) -> None:
    async with (
        running_app(GatewaySettings(redis_url=clean_redis, registry_cache_s=0)) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {keys[0]}"},
        ) as client,
    ):
        response = await client.post(
            "/v1/speakers", files=upload("spk1_snt1"), data={"name": "Alice"}
        )
    assert response.status_code == 503 and response.json()["error"]["code"] == "no_worker"


async def test_a_diarized_upload_announces_recognised_people_to_a_sessions_listeners(
    gateway: tuple[httpx.AsyncClient, httpx.AsyncClient], aredis: aioredis.Redis
) -> None:
    mine, theirs = gateway
    ids = {"Alice": await enrol(mine, "spk1", "Alice"), "Bob": await enrol(mine, "spk2", "Bob")}
    session_id = (await mine.post("/v1/sessions", json={})).json()["id"]
    order = ["spk1_snt3", "spk2_snt3", "spk1_snt4"]
    gap = bytes(2 * 16_000 // 2)
    files = {"file": ("talk.wav", pcm_to_wav(gap.join(pcm(n) for n in order), PCM16))}
    form = {"diarize": "true", "session_id": session_id}
    response = await mine.post("/v1/audio/transcriptions", files=files, data=form)
    assert response.status_code == 200, response.text
    entries = await aredis.xrange(session_events(session_id))
    persons = [json.loads(e[b"d"]) for _id, e in entries if e[b"t"] == b"person"]
    assert [(p["name"], p["person_id"]) for p in persons] == [
        ("Alice", ids["Alice"]), ("Bob", ids["Bob"]), ("Alice", ids["Alice"])
    ], persons  # fmt: skip
    assert {"description", "relationship", "similarity"} <= set(persons[0])
    # Another key may not speak into the session; a session without diarizing says why.
    refused = await theirs.post("/v1/audio/transcriptions", files=files, data=form)
    assert refused.status_code == 403, refused.text
    undiarized = await mine.post(
        "/v1/audio/transcriptions", files=files, data={"session_id": session_id}
    )
    assert undiarized.status_code == 400 and "diarize" in undiarized.text
