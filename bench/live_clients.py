"""One live session against each system, recorded as a ``Trace``: the same clip, paced
alike, each over the system's own protocol.

- PyParrot: ``/ws/converse`` (``auth``, binary pcm_s16le, ``audio_complete``); done at
  ``audio_processed``, which follows the last ``stt_final``.
- wyoming-faster-whisper: ``transcribe``, ``audio-start``, ``audio-chunk``s, ``audio-stop``;
  one ``transcript`` after the audio ends, no partials.
- WhisperLive: its JSON options, binary int16 frames; it sends the last segments again and
  again, the last one ``completed: false`` until several identical decodes confirm it.
  ``END_OF_AUDIO`` makes it close at once (dropping the unconfirmed text), so the client
  keeps the socket open after the audio until nothing is left unconfirmed (and nothing new
  came for ``QUIET_S``) or ``wait_s`` passed, and records how long it waited.
"""

import asyncio
import contextlib
import json
import time
import uuid
import warnings
from collections.abc import AsyncIterable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.live_clip import RATE_HZ, Clip, paced
from bench.live_score import Trace

with warnings.catch_warnings():  # wyoming.audio imports the deprecated stdlib audioop
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

QUIET_S = 1.0  # WhisperLive: nothing pending and nothing new for this long = done
CONNECT_TIMEOUT_S = 60.0


async def pyparrot(
    url: str, clip: Clip, chunk_s: float, timeout_s: float, name: str, speed: float = 1.0
) -> Trace:
    """A presenter session on ``/ws/converse`` (pipeline end2end: captions only), the clip
    sent at ``speed`` times real time."""
    trace = Trace(name)
    auth = {"type": "auth", "pipeline": "end2end", "audio_format": "pcm_s16le"}
    auth |= {"sample_rate": RATE_HZ, "language": "en"}
    async with connect(url, open_timeout=CONNECT_TIMEOUT_S) as ws:
        await ws.send(json.dumps(auth))
        started = json.loads(await asyncio.wait_for(ws.recv(), CONNECT_TIMEOUT_S))
        if started.get("type") != "session_started":
            trace.errors.append(f"auth answered {started}")
            return trace
        reader = asyncio.create_task(pyparrot_events(ws, trace))
        trace.timeline = await paced(clip.chunks(chunk_s), chunk_s, ws.send, speed)
        await ws.send(json.dumps({"type": "audio_complete"}))
        try:
            await asyncio.wait_for(reader, timeout_s)
        except TimeoutError:
            trace.errors.append(f"no audio_processed within {timeout_s:g} s")
    trace.waited_s = time.time() - trace.timeline.end
    return trace


async def pyparrot_events(messages: AsyncIterable[str | bytes], trace: Trace) -> None:
    """Record a PyParrot session's events (from its socket or WebRTC data channel) until
    ``audio_processed``."""
    finals: dict[int, str] = {}
    partial: tuple[int, str] | None = None
    async for message in messages:
        if isinstance(message, bytes):
            continue
        event: dict[str, Any] = json.loads(message)
        now, kind = time.time(), event.get("type")
        if kind == "stt_partial" and event["utterance"] not in finals:
            partial = (event["utterance"], event["text"])
            trace.partials += 1
            trace.partial_times.append(now)
        elif kind == "stt_final":
            finals[event["utterance"]] = event["text"]
            trace.finals.append((now, event["text"]))
            if partial is not None and partial[0] == event["utterance"]:
                partial = None
        elif kind == "error":
            trace.errors.append(f"{event.get('code')}: {event.get('message')}")
            continue
        elif kind == "audio_processed":
            trace.completed = True
            return
        else:
            continue
        shown = [finals[k] for k in sorted(finals)] + ([partial[1]] if partial else [])
        trace.show(now, " ".join(shown))


async def wyoming(port: int, clip: Clip, chunk_s: float, timeout_s: float) -> Trace:
    """One request to a Wyoming ASR server, audio paced at 1× real time."""
    trace = Trace("wyoming-faster-whisper")
    async with AsyncTcpClient("127.0.0.1", port, 5, timeout_s) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(RATE_HZ, 2, 1).event())

        async def send(chunk: bytes) -> None:
            await client.write_event(AudioChunk(RATE_HZ, 2, 1, chunk).event())

        trace.timeline = await paced(clip.chunks(chunk_s), chunk_s, send)
        await client.write_event(AudioStop().event())
        while (event := await client.read_event()) is not None:
            if Transcript.is_type(event.type):
                now, text = time.time(), Transcript.from_event(event).text
                trace.finals.append((now, text))
                trace.show(now, text)
                trace.completed = True
                break
    trace.waited_s = time.time() - trace.timeline.end
    return trace


class _LiveState:
    """WhisperLive's segments as its own client keeps them: confirmed ones appended in order
    (a segment starting before the last one's end is a repeat), the last one pending."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.confirmed: list[dict[str, Any]] = []
        self.pending = ""
        self.last_message = 0.0

    def update(self, segments: list[dict[str, Any]], now: float) -> None:
        self.last_message = now
        for seg in segments:
            if not seg.get("completed"):
                continue
            if not self.confirmed or float(seg["start"]) >= float(self.confirmed[-1]["end"]):
                self.confirmed.append(seg)
                self.trace.finals.append((now, seg["text"]))
        last = segments[-1] if segments else {"completed": True}
        self.pending = "" if last.get("completed") else str(last.get("text", ""))
        if self.pending:
            self.trace.partials += 1
            self.trace.partial_times.append(now)
        texts = [s["text"] for s in self.confirmed] + [self.pending]
        self.trace.show(now, " ".join(texts))


async def whisperlive(
    port: int, clip: Clip, chunk_s: float, wait_s: float, model_dir: str
) -> Trace:
    """One WhisperLive client with its own client's default options (VAD on, language en)."""
    trace = Trace("WhisperLive")
    state = _LiveState(trace)
    options = {"uid": uuid.uuid4().hex, "language": "en", "task": "transcribe"}
    options |= {"model": model_dir, "use_vad": True, "send_last_n_segments": 10}
    options |= {"no_speech_thresh": 0.45, "clip_audio": False, "same_output_threshold": 10}
    options |= {"audio_format": "int16"}
    async with connect(f"ws://127.0.0.1:{port}", open_timeout=CONNECT_TIMEOUT_S) as ws:
        await ws.send(json.dumps(options))
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            while (ready := json.loads(await ws.recv())).get("message") != "SERVER_READY":
                if ready.get("status") in ("WAIT", "ERROR"):
                    trace.errors.append(f"refused: {ready}")
                    return trace
        reader = asyncio.create_task(_whisperlive_events(ws, state))
        trace.timeline = await paced(clip.chunks(chunk_s), chunk_s, ws.send)
        end = trace.timeline.end
        while time.time() < end + wait_s and not reader.done():
            quiet = time.time() - max(state.last_message, end) >= QUIET_S
            if quiet and not state.pending and state.confirmed:
                trace.completed = True
                break
            await asyncio.sleep(0.05)
        trace.waited_s = time.time() - end
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        with contextlib.suppress(Exception):
            await ws.send(b"END_OF_AUDIO")
    return trace


async def _whisperlive_events(ws: ClientConnection, state: _LiveState) -> None:
    async for message in ws:
        event = json.loads(message)
        if "segments" in event:
            state.update(event["segments"], time.time())
        elif event.get("message") == "DISCONNECT":
            return
