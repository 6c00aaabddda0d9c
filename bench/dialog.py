"""Benchmark: the voice assistant's round trip, end of the user's text → first reply audio,
with the bundled SmolLM2 (llama.cpp via xllamacpp) and the bundled Piper voice.

``python -m bench.dialog [--quick] [--out PATH]``

Paths, one turn at a time, interleaved round by round:

- in-process (the baseline): the LLM worker's own ``reply()`` on a model loaded here,
  and the first sentence it yields spoken by the TTS worker's own Piper wrapper, while the
  model goes on writing in its thread, as in the product; timed to the first token, the
  first sentence and its first PCM;
- ``/ws/converse`` (the live voice assistant: ``pipeline: dialog``, a voice, barge-in):
  ``text_input`` sent → first ``llm_response`` event and first binary audio frame;
- ``POST /converse`` with ``response_format: wav`` (the HTTP assistant API): request sent →
  first body byte;
- the question *spoken* to ``/ws/converse`` at real-time pace (``bench.dialog_spoken``):
  end of speech → its ``stt_final``, the first ``llm_response`` and the first audio frame.

Each gateway turn starts a new session (no history, no memory), so every path sends the
model the same two messages (system prompt + question). Every turn is read to its end before
the next starts. Replies are capped at ``max_tokens`` (the worker's ``LLM_MAX_TOKENS_LIMIT``,
and the same cap in-process) to keep rounds short; the first sentence is almost always done
well before the cap. The gateway samples at its fixed temperature
(``DialogLimits.dialog_temperature``), so replies, and their first sentences, differ from
turn to turn: compare medians, and the sentence lengths.
"""

import asyncio
import json
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench import dialog_spoken, interleave
from bench.gateway import spawn_gateway, wait_ready
from bench.stack import Stack
from services.llm.handler import reply
from services.llm.model import ChatModel, Delta, load_model
from services.llm.settings import LlmSettings
from services.tts.settings import TtsSettings
from shared.messages import ChatMessage, ChatRequest

if TYPE_CHECKING:
    from services.tts.model import TtsModel

QUESTION = "What should I pack for a weekend trip to the mountains?"
DIRECT, WS, HTTP, SPOKEN = "direct", "ws", "http", "spoken"
TIMEOUT_S = 120.0
NAN = math.nan


@dataclass(frozen=True)
class DialogConfig:
    rounds: int
    warmup: int = 1
    max_tokens: int = 64  # reply cap, LLM_MAX_TOKENS_LIMIT on the worker and here
    cpu_threads: int = 2  # llama.cpp and ONNX Runtime threads, in-process and in the workers
    paths: tuple[str, ...] = (DIRECT, WS, HTTP, SPOKEN)  # DIRECT (the baseline) always runs


# Quick mode leaves out POST /converse (a turn costs seconds; CI's budget is tight) but keeps
# the spoken turn, the only one to exercise STT → LLM → TTS.
QUICK = DialogConfig(rounds=2, warmup=1, paths=(DIRECT, WS, SPOKEN))
FULL = DialogConfig(rounds=20, warmup=2)


@dataclass(frozen=True)
class Sample:
    """One turn, in seconds from the end of the user's text or speech (NaN: not seen on
    this path)."""

    first_token_s: float
    first_sentence_s: float
    first_audio_s: float
    sentence_chars: int  # length of the first sentence spoken (0: not seen)
    heard_s: float = NAN  # spoken turns: end of speech → the question's stt_final

    def __str__(self) -> str:
        return f"{self.first_audio_s * 1000:.0f} ms"


@dataclass(frozen=True)
class DialogResult:
    config: DialogConfig
    model: str
    voice: str
    temperature: float  # the gateway's, used on every path
    series: dict[str, list[Sample]]  # path -> one sample per round

    def values(self, path: str, field: str) -> list[float]:
        """One field of ``path``'s samples, one per round."""
        return [getattr(s, field) for s in self.series[path]]

    def ratio(self, path: str) -> float:
        """Median per-round ratio of ``path``'s first-audio time to the in-process one."""
        first = "first_audio_s"
        return interleave.paired_ratio(self.values(path, first), self.values(DIRECT, first))


Timed = Callable[[], Sample]


def _finish_generation() -> None:
    """Wait for llama.cpp's generation thread, so none outlives a turn (or the process)."""
    for thread in threading.enumerate():
        if thread.name == "llm-generate":
            thread.join(TIMEOUT_S)


class _FirstToken:
    """The model, noting when its first piece of text arrives after ``started``."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.name = model.name
        self.started = 0.0
        self.first_s = NAN

    def chat(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float
    ) -> Iterator[Delta]:
        for delta in self.model.chat(messages, max_tokens, temperature):
            if delta.text and math.isnan(self.first_s):
                self.first_s = time.perf_counter() - self.started
            yield delta


def _request() -> ChatRequest:
    """What the gateway sends for the question in a new session (no history, no memory)."""
    from services.gateway.stages.llm import DialogLimits  # the gateway's defaults, nothing else

    limits = DialogLimits()
    return ChatRequest(
        messages=[ChatMessage(role="user", content=QUESTION)],
        max_tokens=limits.dialog_max_tokens,
        temperature=limits.dialog_temperature,
    )


def _direct_path(
    llm: ChatModel, settings: LlmSettings, voice: "TtsModel", request: ChatRequest
) -> Timed:
    model = _FirstToken(llm)

    def run() -> Sample:
        model.started, model.first_s = time.perf_counter(), NAN
        chunks = reply(model, settings, request)
        first = next((c for c in chunks if c.text.strip()), None)
        if first is None:
            raise RuntimeError("the model replied with no text")
        first_sentence = time.perf_counter() - model.started
        audio = voice.synthesize(first.text, 1.0)
        next(audio)
        first_audio = time.perf_counter() - model.started
        audio.close()
        for _ in chunks:  # the model finishes its reply meanwhile, as in the worker
            pass
        _finish_generation()
        return Sample(model.first_s, first_sentence, first_audio, len(first.text))

    return run


async def _ws_turn(url: str) -> Sample:
    """One typed turn on a fresh live session, read until its ``tts_complete``."""
    first_sentence, first_audio, chars = NAN, NAN, 0
    async with connect(url, open_timeout=10, max_size=None) as ws:
        await ws.send(json.dumps({"type": "auth", "pipeline": "dialog", "voice": ""}))
        await _expect(ws, "session_started")
        started = time.perf_counter()
        await ws.send(json.dumps({"type": "text_input", "text": QUESTION}))
        while True:
            message = await asyncio.wait_for(ws.recv(), TIMEOUT_S)
            if isinstance(message, bytes):
                if message and math.isnan(first_audio):
                    first_audio = time.perf_counter() - started
                continue
            event = json.loads(message)
            kind = event["type"]
            if kind == "error":
                raise RuntimeError(f"/ws/converse: {event['code']}: {event['message']}")
            if kind == "llm_response" and not event.get("final") and math.isnan(first_sentence):
                first_sentence, chars = time.perf_counter() - started, len(event["text"])
            if kind == "tts_complete" and "turn" in event:
                if math.isnan(first_audio):
                    raise RuntimeError("/ws/converse: the turn ended without audio")
                return Sample(NAN, first_sentence, first_audio, chars)


async def _expect(ws: ClientConnection, kind: str) -> None:
    event = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
    if event.get("type") != kind:
        raise RuntimeError(f"/ws/converse: expected {kind!r}, got {event}")


def _ws_path(base: str) -> Timed:
    url = base.replace("http://", "ws://", 1) + "/ws/converse"
    return lambda: asyncio.run(_ws_turn(url))


def _http_path(client: httpx.Client) -> Timed:
    body = {"text": QUESTION, "response_format": "wav"}

    def run() -> Sample:
        first_audio, size = NAN, 0
        started = time.perf_counter()
        with client.stream("POST", "/converse", json=body) as response:
            if response.status_code != 200:
                response.read()
                raise RuntimeError(f"/converse answered {response.status_code}: {response.text}")
            for data in response.iter_raw():
                if data and not size:
                    first_audio = time.perf_counter() - started
                size += len(data)
        if not size:
            raise RuntimeError("/converse: the reply had no audio")
        return Sample(NAN, NAN, first_audio, 0)

    return run


def _spoken_path(base: str, voice: "TtsModel") -> Timed:
    url = base.replace("http://", "ws://", 1) + "/ws/converse"
    pcm, speech_samples = dialog_spoken.question_audio(voice, QUESTION)

    def run() -> Sample:
        heard, sentence, audio = asyncio.run(dialog_spoken.spoken_turn(url, pcm, speech_samples))
        return Sample(NAN, sentence, audio, 0, heard)

    return run


def run(config: DialogConfig) -> DialogResult:
    """Measure ``config.rounds`` interleaved turns on each path."""
    # Imported here so that `python -m bench --only bus` never loads a voice library.
    from services.tts.model import load_model as load_voice

    threads = str(config.cpu_threads)
    settings = LlmSettings(cpu_threads=config.cpu_threads, max_tokens_limit=config.max_tokens)
    with Stack() as stack:
        llm_env = {"LLM_CPU_THREADS": threads, "LLM_MAX_TOKENS_LIMIT": str(config.max_tokens)}
        workers = [stack.spawn("llm", ["-m", "services.llm"], llm_env)]
        workers.append(stack.spawn("tts", ["-m", "services.tts"], {"TTS_CPU_THREADS": threads}))
        stages = ["llm", "tts"]
        if SPOKEN in config.paths:
            stt_env = {"STT_CPU_THREADS": threads}
            workers.append(stack.spawn("stt", ["-m", "services.stt"], stt_env))
            stages.append("stt")
        gateway, base = spawn_gateway(stack, stages)
        llm = load_model(settings)  # while they start
        voice = load_voice(TtsSettings(cpu_threads=config.cpu_threads))
        wait_ready(base, [*workers, gateway])
        interleave.log("dialog", "gateway ready")
        with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
            request = _request()
            every = {DIRECT: _direct_path(llm, settings, voice, request), WS: _ws_path(base)}
            every[HTTP] = _http_path(client)
            every[SPOKEN] = _spoken_path(base, voice)
            paths = {name: path for name, path in every.items() if name in config.paths}
            paths[DIRECT] = every[DIRECT]
            series = interleave.rounds(paths, config.rounds, config.warmup, "dialog")
    return DialogResult(config, llm.name, voice.name, request.temperature, series)


if __name__ == "__main__":
    from bench import dialog_report, standalone

    sys.exit(standalone.main("dialog", (QUICK, FULL), run, dialog_report.render))
