"""The speaker stage in the product: enrolment and identification over HTTP, and live
sessions on ``/ws/converse`` with and without a speaker worker (same run, alternating), to
see what the stage adds to a final's latency and whether finals name the right person.

Processes: a private Redis, one STT worker (tiny.en), one speaker worker, the gateway. A
session sends sentences of the two readers and of never-enrolled synthetic voices, each
followed by a pause long enough to end the utterance, at ``speed`` times real time. A
final's latency is its arrival minus the moment the last sample of its sentence was sent.
"""

import asyncio
import json
import time
from dataclasses import dataclass, field

import httpx
import numpy as np
import redis
from websockets.asyncio.client import connect

from bench.gateway import spawn_gateway, wait_ready
from bench.speaker import ENROL_SENTENCES, REAL, read, synthetic_voices
from bench.stack import Stack, wait_until
from shared import streams
from shared.audio import PCM16, float32_to_pcm16, pcm_to_wav

CHUNK_S = 0.1
GAP_S = 2.5  # past the gateway's longest pause: every sentence is its own utterance
TIMEOUT_S = 120.0


@dataclass
class LiveRun:
    with_speaker: bool
    latencies_s: list[float] = field(default_factory=list)
    named: list[tuple[str, str | None]] = field(default_factory=list)  # (expected, heard)
    finals_missing: int = 0


@dataclass
class ProductResult:
    upload: list[tuple[str, str | None, float]] = field(default_factory=list)  # expected, got
    runs: list[LiveRun] = field(default_factory=list)
    enrol_s: list[float] = field(default_factory=list)
    speed: float = 1.0


def wav(samples: np.ndarray) -> bytes:
    return pcm_to_wav(float32_to_pcm16(samples), PCM16)


def probes() -> list[tuple[str, np.ndarray]]:
    """(expected person or "" for a stranger, audio) of every identification probe."""
    out = [
        (who, read(REAL / f"{who}_snt{i}.wav"))
        for who in ("spk1", "spk2")
        for i in range(1, 7)
        if i not in ENROL_SENTENCES
    ]
    return out + [("", clip) for clips in synthetic_voices().values() for clip in clips]


def enrol(client: httpx.Client, out: ProductResult) -> dict[str, str]:
    """Enrol both readers from their first two sentences; person id -> reader."""
    people = {}
    for who in ("spk1", "spk2"):
        files = [
            ("file", (f"{i}.wav", (REAL / f"{who}_snt{i}.wav").read_bytes()))
            for i in ENROL_SENTENCES
        ]
        started = time.perf_counter()
        response = client.post("/v1/speakers", files=files, data={"name": who})
        out.enrol_s.append(time.perf_counter() - started)
        response.raise_for_status()
        people[response.json()["person_id"]] = who
    return people


def identify_uploads(
    client: httpx.Client, cases: list[tuple[str, np.ndarray]], out: ProductResult
) -> None:
    for expected, audio in cases:
        response = client.post("/v1/speakers/identify", files={"file": ("x.wav", wav(audio))})
        response.raise_for_status()
        body = response.json()
        out.upload.append(
            (expected, body["person"]["name"] if body["person"] else None, body["similarity"])
        )


async def session(
    ws_url: str, cases: list[tuple[str, np.ndarray]], speed: float, run: LiveRun
) -> None:
    """One end2end session over every case; fills ``run``."""
    gap = np.zeros(int(GAP_S * 16_000), np.float32)
    ends: list[float] = []
    finals: list[tuple[float, dict]] = []
    async with connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "pipeline": "end2end", "language": "en"}))
        assert json.loads(await ws.recv())["type"] == "session_started"

        async def reader() -> None:
            async for message in ws:
                if isinstance(message, bytes):
                    continue
                event = json.loads(message)
                if event["type"] == "stt_final" and event["text"].strip():
                    finals.append((time.time(), event))
                elif event["type"] == "audio_processed":
                    return

        task = asyncio.create_task(reader())
        loop = asyncio.get_running_loop()
        origin, sent_s = loop.time(), 0.0
        step = int(CHUNK_S * 16_000)
        for _expected, audio in cases:
            for piece, is_speech in ((audio, True), (gap, False)):
                for offset in range(0, len(piece), step):
                    chunk = piece[offset : offset + step]
                    sent_s += len(chunk) / 16_000
                    await asyncio.sleep(max(0.0, origin + sent_s / speed - loop.time()))
                    await ws.send(chunk.astype("<f4").tobytes())
                if is_speech:
                    ends.append(time.time())
        await ws.send(json.dumps({"type": "audio_complete"}))
        await asyncio.wait_for(task, TIMEOUT_S)
    if len(finals) != len(cases):
        run.finals_missing += abs(len(cases) - len(finals))
        return  # sentences merged or lost: no one-to-one latency
    for (expected, _), end, (arrived, event) in zip(cases, ends, finals, strict=True):
        run.latencies_s.append(arrived - end)
        if run.with_speaker:
            person = event.get("person")
            run.named.append((expected, person["name"] if person else None))


def _speaker_up(url: str, up: bool) -> bool:
    client = redis.Redis.from_url(url)
    try:
        return bool(client.keys(streams.heartbeat("speaker", "*"))) == up
    finally:
        client.close()


def run_product(rounds: int, speed: float) -> ProductResult:
    """Identification through uploads, then ``rounds`` live sessions with and without."""
    out = ProductResult(speed=speed)
    cases = probes()
    with Stack() as stack:
        stt = stack.spawn("stt", ["-m", "services.stt"])
        speaker = stack.spawn("speaker", ["-m", "services.speaker"])
        gateway, base = spawn_gateway(stack, ["stt", "speaker"], {"GATEWAY_REGISTRY_CACHE_S": "0"})
        wait_ready(base, [stt, speaker, gateway])
        with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
            enrol(client, out)
            identify_uploads(client, cases, out)
        ws_url = base.replace("http://", "ws://") + "/ws/converse"
        for round_ in range(rounds):
            # Alternate which condition goes first, so a drift over the run cancels out.
            for with_speaker in (True, False) if round_ % 2 == 0 else (False, True):
                running = speaker in stack.children
                if with_speaker and not running:
                    speaker = stack.spawn("speaker", ["-m", "services.speaker"])
                elif not with_speaker and running:
                    speaker.stop()
                    stack.children.remove(speaker)
                wait_until(lambda w=with_speaker: _speaker_up(stack.redis_url, w), [stt], 30)
                run = LiveRun(with_speaker)
                asyncio.run(session(ws_url, cases, speed, run))
                out.runs.append(run)
    return out
