"""Turning one job into one call to an external HTTP server. No Redis, no environment.

The HTTP contract each server implements is in docs/EXTERNAL_BACKENDS.md.
"""

import io
import time
import wave
from collections.abc import Callable, Iterator

import httpx
import numpy as np
from pydantic import BaseModel

from services.external.pool import Pool, Server
from shared.audio import pcm_to_wav
from shared.messages import (
    AudioFormat,
    Envelope,
    Segment,
    SpeechChunk,
    SummarizeRequest,
    Summary,
    SynthesizeRequest,
    TranscribeRequest,
    Transcript,
    TranslateRequest,
    Translation,
)
from shared.worker import JobFailed, Rejected, Retryable

# A server's refusals of the input itself; any other 4xx (401, 404...) is a fault of our
# configuration, dead-lettered for an operator to see.
INPUT_REFUSED = frozenset({400, 413, 415, 422})

Call = Callable[[httpx.Client, str], httpx.Response]


def from_wav(data: bytes) -> tuple[bytes, AudioFormat]:
    """Mono 16-bit PCM and its format from a WAV file (any PCM width, any channel count),
    since the gateway's encoders take what the local TTS workers send; a bad file fails
    the job."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            frames = wav.readframes(wav.getnframes())
        fmt = AudioFormat(sample_rate_hz=rate)
    except (wave.Error, EOFError, ValueError) as exc:
        raise JobFailed("bad_backend_reply", f"external tts sent no valid WAV: {exc}") from exc
    if width not in (1, 2, 3, 4) or len(frames) % (width * channels):
        raise JobFailed("bad_backend_reply", f"external tts sent a {width}-byte WAV")
    return _pcm16_mono(frames, width, channels), fmt


def _pcm16_mono(frames: bytes, width: int, channels: int) -> bytes:
    raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, width)
    top = raw[:, -2:] if width > 1 else raw  # the two most significant bytes (little-endian)
    if width == 1:  # 8-bit WAV is unsigned
        samples = (top[:, 0].astype(np.int32) - 128) << 8
    else:
        samples = top.copy().view("<i2")[:, 0].astype(np.int32)
    mono = samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples
    return np.asarray(mono).astype("<i2").tobytes()


def call(pool: Pool, timeout_s: float, send: Call) -> httpx.Response:
    """Send to the healthy servers in round-robin order; fail over on transport or 5xx errors."""
    errors = []
    with httpx.Client(timeout=timeout_s) as http:
        for server in pool.order():
            try:
                response = send(http, server.url)
            except httpx.HTTPError as exc:
                errors.append(_down(pool, server, f"{type(exc).__name__}: {exc}"))
                continue
            if response.status_code >= 500:
                errors.append(_down(pool, server, f"HTTP {response.status_code}"))
                continue
            if not response.is_success:
                status = response.status_code
                reason = f"{server.name} answered HTTP {status}: {response.text[:300]}"
                if status in INPUT_REFUSED:
                    raise Rejected("backend_rejected", reason)
                raise JobFailed("backend_misconfigured", reason)
            return response
    raise Retryable("no healthy external server" + (f": {'; '.join(errors)}" if errors else ""))


def _down(pool: Pool, server: Server, reason: str) -> str:
    pool.mark(server, healthy=False)  # the periodic re-check brings it back
    return f"{server.name} ({server.url}): {reason}"


def _reply(response: httpx.Response) -> dict[str, object]:
    try:
        reply = response.json()
    except ValueError as exc:
        raise JobFailed("bad_backend_reply", f"reply is not JSON: {exc}") from exc
    if not isinstance(reply, dict):
        raise JobFailed("bad_backend_reply", "reply is not a JSON object")
    return reply


def _json(response: httpx.Response, field: str) -> str:
    value = _reply(response).get(field)
    if not isinstance(value, str):
        raise JobFailed("bad_backend_reply", f"reply has no string field {field!r}")
    return value


def transcribe(pool: Pool, timeout_s: float, model: str, req: TranscribeRequest) -> Transcript:
    started = time.perf_counter()
    wav = pcm_to_wav(req.audio, req.audio_format)
    data = {"task": req.task, "language": req.language or "", "prompt": req.prompt or ""}
    response = call(
        pool,
        timeout_s,
        lambda http, url: http.post(
            f"{url}/asr", files={"file": ("audio.wav", wav, "audio/wav")}, data=data
        ),
    )
    text = _json(response, "text").strip()
    language = str(_reply(response).get("language") or req.language or "en")
    duration = req.audio_format.duration_s(req.audio)
    return Transcript(
        text=text,
        language=language,
        duration_s=duration,
        segments=[Segment(id=0, start_s=0.0, end_s=duration, text=text)] if text else [],
        final=req.mode.final,
        model=model,
        processing_s=time.perf_counter() - started,
    )


def translate(pool: Pool, timeout_s: float, model: str, req: TranslateRequest) -> Translation:
    started = time.perf_counter()
    body = {"text": req.text, "source": req.source, "target": req.target}
    response = call(pool, timeout_s, lambda http, url: http.post(f"{url}/translate", json=body))
    return Translation(
        text=_json(response, "translation"),
        source=req.source,
        target=req.target,
        model=model,
        processing_s=time.perf_counter() - started,
    )


def synthesize(pool: Pool, timeout_s: float, model: str, req: SynthesizeRequest) -> SpeechChunk:
    body = {"text": req.text, "voice": req.voice, "language": req.language, "speed": req.speed}
    response = call(pool, timeout_s, lambda http, url: http.post(f"{url}/tts", json=body))
    audio, fmt = from_wav(response.content)
    return SpeechChunk(audio=audio, audio_format=fmt, text=req.text, last=True, voice=model)


def summarize(pool: Pool, timeout_s: float, model: str, req: SummarizeRequest) -> Summary:
    started = time.perf_counter()
    body = {"text": req.text, "max_sentences": req.max_sentences, "ratio": req.ratio}
    response = call(pool, timeout_s, lambda http, url: http.post(f"{url}/summarize", json=body))
    return Summary(
        text=_json(response, "summary"),
        method="abstractive",
        model=model,
        processing_s=time.perf_counter() - started,
    )


ROUTES: dict[type[BaseModel], Callable[..., BaseModel]] = {
    TranscribeRequest: transcribe,
    TranslateRequest: translate,
    SynthesizeRequest: synthesize,
    SummarizeRequest: summarize,
}


def handle(pool: Pool, timeout_s: float, model: str, job: Envelope) -> Iterator[BaseModel]:
    """The worker-loop handler: one call to an external server per job."""
    route = ROUTES.get(type(job.payload))
    if route is None:
        raise Rejected("wrong_kind", f"the external adapter cannot handle {job.kind!r}")
    yield route(pool, timeout_s, model, job.payload)
