"""The live voice assistant (``pipeline: dialog``) over the real bus, with a scripted LLM
worker (its replies chosen by the test) and the real Piper TTS worker."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from services.gateway.settings import GatewaySettings
from services.gateway.stages import tts
from services.tts.__main__ import worker_spec as tts_spec
from services.tts.model import load_model as load_tts
from services.tts.settings import TtsSettings
from shared import streams
from shared.messages import ChatReply, Envelope
from shared.settings import WorkerSettings
from shared.worker import WorkerSpec
from tests.apps import running_app, running_workers
from tests.gateway.live_helpers import auth, listening

pytestmark = pytest.mark.redis

PIECES = ["Sure.", "...", "Pack a warm coat."]  # "..." has nothing a voice could say


def scripted_llm(envelope: Envelope) -> Iterator[ChatReply]:
    for index, text in enumerate(PIECES):
        yield ChatReply(text=text, index=index, model="scripted")
    yield ChatReply(text="", index=len(PIECES), last=True, model="scripted")


@pytest.fixture
async def assistant(clean_redis: str) -> AsyncIterator[str]:
    settings = GatewaySettings(redis_url=clean_redis, request_timeout_s=30, registry_cache_s=0)
    tts_settings = TtsSettings(redis_url=clean_redis, block_ms=50)
    llm = WorkerSpec("llm", streams.jobs("llm", "scripted"), scripted_llm, model="scripted")
    loops = [
        (llm, WorkerSettings(redis_url=clean_redis, worker_name="llm-a", block_ms=50)),
        (tts_spec(load_tts(tts_settings), tts_settings), tts_settings),
    ]
    async with running_workers(clean_redis, loops), running_app(settings) as app:
        async with listening(app) as address:
            yield address


@pytest.mark.model
@pytest.mark.timeout(60)
async def test_a_reply_piece_with_nothing_to_say_is_skipped_not_an_error(assistant: str) -> None:
    events: list[dict[str, Any]] = []
    audio = 0
    async with connect(f"ws://{assistant}/ws/converse") as ws:
        await auth(ws, pipeline="dialog", voice="")
        await ws.send(json.dumps({"type": "text_input", "text": "What should I pack?"}))
        while not events or events[-1].get("type") != "tts_complete":
            message = await asyncio.wait_for(ws.recv(), 30)
            if isinstance(message, bytes):
                audio += len(message)
            else:
                events.append(json.loads(message))
    kinds = [e["type"] for e in events]
    assert "error" not in kinds, events
    replies = [e for e in events if e["type"] == "llm_response" and not e.get("final")]
    pieces = [e["text"] for e in replies if e["text"]]  # the closing piece is empty
    assert pieces == PIECES
    assert audio > 24_000 * 2 * 0.5  # both speakable pieces were spoken (24 kHz s16)


@pytest.mark.parametrize(
    "text, expected", [("...", False), (" - ", False), ("", False), ("1.", True), ("Ja!", True)]
)
def test_what_counts_as_speakable(text: str, expected: bool) -> None:
    assert tts.speakable(text) is expected
