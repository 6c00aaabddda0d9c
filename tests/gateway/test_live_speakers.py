"""Live speakers end to end: two readers enrolled over HTTP, then a live session over
/ws/converse with the real Whisper and speaker workers: each final carries its speaker, a
``person`` event in seed 004's shape reaches SSE listeners once per turn of an enrolled
reader, an unknown voice is never named, and the transcript shows who spoke."""

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect

from services.speaker.__main__ import worker_spec as speaker_spec
from services.speaker.model import load_model as load_speaker
from services.speaker.settings import SpeakerSettings
from services.stt.__main__ import worker_spec as stt_spec
from services.stt.model import SttModel
from services.stt.settings import SttSettings
from tests.apps import running_workers
from tests.gateway.live_helpers import auth, collect, stream
from tests.gateway.test_live import sse_events
from tests.polling import eventually

pytestmark = pytest.mark.redis

DATA = Path(__file__).parents[1] / "data"
REAL = DATA / "real"
SPEED = 3.0
GAP = bytes(2 * 16_000 * 5 // 2)  # 2.5 s of silence: past GATEWAY_LIVE_LONG_SILENCE_MS


def pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as f:
        return f.readframes(f.getnframes())


@pytest.fixture
async def workers(
    clean_redis: str, live_whisper: tuple[SttModel, SttSettings]
) -> AsyncIterator[None]:
    model, stt_settings = live_whisper
    speaker = SpeakerSettings()
    loops = [
        (stt_spec(model, stt_settings), SttSettings(redis_url=clean_redis, block_ms=50)),
        (
            speaker_spec(load_speaker(speaker), speaker),
            SpeakerSettings(redis_url=clean_redis, block_ms=50),
        ),
    ]
    async with running_workers(clean_redis, loops):
        yield


@pytest.mark.model
@pytest.mark.usefixtures("workers")
@pytest.mark.timeout(90)
async def test_enrolled_readers_are_announced_once_per_turn_on_sse(
    live_gateway: tuple[FastAPI, str],
) -> None:
    _app, address = live_gateway
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=60) as http:
        people = {}
        for who, name in (("spk1", "Alice"), ("spk2", "Bob")):
            files = [
                ("file", (f"{who}_snt{i}.wav", (REAL / f"{who}_snt{i}.wav").read_bytes()))
                for i in (1, 2)
            ]
            data = {"name": name, "description": f"{name} reads", "relationship": "colleague"}
            enrolled = await http.post("/v1/speakers", files=files, data=data)
            assert enrolled.status_code == 201, enrolled.text
            people[name] = enrolled.json()["person_id"]
        session_id = (await http.post("/v1/sessions", json={})).json()["id"]
        seen: list[dict[str, Any]] = []
        path = f"/v1/sessions/{session_id}/events"
        listener = asyncio.create_task(sse_events(address, path, seen, {"Last-Event-ID": "0-0"}))
        order = ["spk1_snt3", "spk2_snt3", "spk2_snt4", "spk1_snt4"]
        audio = GAP + GAP.join(pcm(REAL / f"{n}.wav") for n in order) + GAP
        audio += pcm(DATA / "en_short.wav") + GAP  # an espeak-ng voice nobody enrolled
        async with connect(f"ws://{address}/ws/converse") as ws:
            await auth(ws, session_id=session_id, pipeline="end2end")
            events: list[dict[str, Any]] = []
            collector = asyncio.create_task(collect(ws, "audio_processed", 60, events))
            await stream(ws, audio, SPEED)
            await collector
        # The presenter reconnects: the second reader keeps the session's label.
        async with connect(f"ws://{address}/ws/converse") as ws:
            await auth(ws, session_id=session_id, pipeline="end2end")
            again: list[dict[str, Any]] = []
            collector = asyncio.create_task(collect(ws, "audio_processed", 60, again))
            await stream(ws, GAP + pcm(REAL / "spk2_snt5.wav") + GAP, SPEED)
            await collector
        transcript = await http.get(f"/v1/sessions/{session_id}/transcript")
    finals = [e for e in events if e["type"] == "stt_final" and e["text"]]
    assert len(finals) == 5, [(e["type"], e.get("text")) for e in events]
    named = [f["person"]["name"] if f["person"] else None for f in finals]
    assert named == ["Alice", "Bob", "Bob", "Alice", None], finals
    labels = [f["speaker"] for f in finals]
    assert labels[0] == labels[3] != labels[1] == labels[2] and labels[4] not in labels[:4]
    persons = [e for e in events if e["type"] == "person"]
    assert [p["name"] for p in persons] == ["Alice", "Bob", "Alice"]  # once per turn
    assert persons[0]["person_id"] == people["Alice"] and persons[0]["similarity"] >= 0.75
    assert {"name", "description", "relationship", "person_id"} <= set(persons[0])

    async def listener_heard_everyone() -> bool:
        return sum(e["event"] == "person" for e in seen) >= 4

    await eventually(listener_heard_everyone, 10)
    listener.cancel()
    heard = [e for e in seen if e["event"] == "person"]
    assert [(e["name"], e["relationship"]) for e in heard] == [
        ("Alice", "colleague"),
        ("Bob", "colleague"),
        ("Alice", "colleague"),
        ("Bob", "colleague"),  # after the reconnect: his turn follows the stranger's
    ]
    (resumed,) = [e for e in again if e["type"] == "stt_final" and e["text"]]
    assert resumed["speaker"] == labels[1] and resumed["person"]["name"] == "Bob", resumed
    lines = transcript.text.splitlines()
    assert len(lines) == 6 and lines[0].startswith(f"{labels[0]}: ")
    assert lines[5].startswith(f"{labels[1]}: ")
