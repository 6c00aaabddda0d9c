"""The dialog benchmark's spoken turn: the question as speech, streamed to ``/ws/converse``
at real-time pace, timed from the end of speech.

The question is spoken by the bundled Piper voice, resampled to 16 kHz, its trailing quiet
trimmed, and followed by silence, as a microphone keeps sending after the user stops; no
``audio_complete`` is sent, so the gateway's VAD must notice the end of the question itself.
"""

import asyncio
import json
import math
import time
from typing import TYPE_CHECKING

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from bench.live_clip import RATE_HZ, piper_16k
from shared.audio import float32_to_pcm16

if TYPE_CHECKING:
    from services.tts.engine import TtsEngine

CHUNK_S = 0.1
TAIL_S = 3.0  # silence sent after the question (the turn's reply usually starts within it)
QUIET = 0.01  # |sample| below this counts as silence when finding the end of speech
TIMEOUT_S = 120.0
NAN = math.nan


def question_audio(voice: "TtsEngine", text: str) -> tuple[bytes, int]:
    """16 kHz PCM of ``text`` spoken, then silence; and how many samples are speech."""
    audio = piper_16k(voice, text)
    loud = np.flatnonzero(np.abs(audio) > QUIET)
    speech = audio[: int(loud[-1]) + 1] if len(loud) else audio
    tail = np.zeros(int(TAIL_S * RATE_HZ), dtype=np.float32)
    return float32_to_pcm16(np.concatenate([speech, tail])), len(speech)


async def spoken_turn(url: str, pcm: bytes, speech_samples: int) -> tuple[float, float, float]:
    """One spoken question on a fresh session: seconds from the end of speech to its
    ``stt_final``, the first ``llm_response`` and the first binary audio frame."""
    auth = {"type": "auth", "pipeline": "dialog", "voice": ""}
    auth |= {"audio_format": "pcm_s16le", "sample_rate": RATE_HZ}
    seen: dict[str, float] = {}
    async with connect(url, open_timeout=10, max_size=None) as ws:
        await ws.send(json.dumps(auth))
        started = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
        if started.get("type") != "session_started":
            raise RuntimeError(f"/ws/converse: expected session_started, got {started}")
        reading = asyncio.create_task(_read_turn(ws, seen))
        speech_end = await _send(ws, pcm, speech_samples, reading)
        await asyncio.wait_for(reading, TIMEOUT_S)
    heard, sentence, audio = (seen.get(k, NAN) - speech_end for k in ("final", "sentence", "audio"))
    return heard, sentence, audio


async def _send(
    ws: ClientConnection, pcm: bytes, speech_samples: int, reading: asyncio.Task[None]
) -> float:
    """Stream ``pcm`` at real time until the reply is over; when the speech's end was sent."""
    step = int(CHUNK_S * RATE_HZ) * 2
    began, speech_end = time.perf_counter(), NAN
    for index, offset in enumerate(range(0, len(pcm), step)):
        if reading.done():
            break
        await asyncio.sleep(max(0.0, began + index * CHUNK_S - time.perf_counter()))
        await ws.send(pcm[offset : offset + step])
        if math.isnan(speech_end) and (offset + step) // 2 >= speech_samples:
            speech_end = time.perf_counter()
    return speech_end


async def _read_turn(ws: ClientConnection, seen: dict[str, float]) -> None:
    """Note when the final, the first reply sentence and the first audio arrive; return at
    the turn's ``tts_complete``."""
    while True:
        message = await ws.recv()
        now = time.perf_counter()
        if isinstance(message, bytes):
            if message:
                seen.setdefault("audio", now)
            continue
        event = json.loads(message)
        kind = event["type"]
        if kind == "error":
            raise RuntimeError(f"/ws/converse: {event['code']}: {event['message']}")
        if kind == "stt_final" and event.get("text"):
            seen.setdefault("final", now)
        if kind == "llm_response" and not event.get("final"):
            seen.setdefault("sentence", now)
        if kind == "tts_complete" and "turn" in event:
            if "audio" not in seen:
                raise RuntimeError("/ws/converse: the spoken turn ended without audio")
            return
