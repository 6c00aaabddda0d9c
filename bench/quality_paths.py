"""Every way a client can get a transcript from a running PyParrot, as a user would call it:
HTTP file upload, ``/v1/pipeline``, Wyoming, and the live paths (``bench/quality_live.py``)."""

import io
import time
import warnings

import av
import httpx

from bench.quality_corpus import Sample
from bench.quality_reference import Heard

with warnings.catch_warnings():  # wyoming.audio imports the deprecated stdlib audioop
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

TIMEOUT_S = 300.0
SAMPLES_PER_CHUNK = 1024


ATTEMPTS = 5
dropped = [0]  # requests the gateway closed without an answer (reported, then retried)


def _upload(sample: Sample) -> dict[str, tuple[str, bytes]]:
    return {"file": (f"clip.{sample.suffix}", sample.data)}


async def _post(
    client: httpx.AsyncClient, route: str, sample: Sample, form: dict[str, str]
) -> httpx.Response:
    """POST an upload; a connection closed before any answer is counted and retried, so
    that fault shows in the report instead of ending the run."""
    for attempt in range(ATTEMPTS):
        try:
            reply = await client.post(route, files=_upload(sample), data=form)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            dropped[0] += 1
            if attempt == ATTEMPTS - 1:
                raise
            continue
        reply.raise_for_status()
        return reply
    raise AssertionError("unreachable")


async def http_file(client: httpx.AsyncClient, sample: Sample, model: str) -> tuple[Heard, str]:
    """``POST /v1/audio/transcriptions``, verbose_json (language and segments); also the
    model that answered (``x-pyparrot-model``)."""
    started = time.perf_counter()
    form = {"model": model, "response_format": "verbose_json"}
    reply = await _post(client, "/v1/audio/transcriptions", sample, form)
    body = reply.json()
    languages = tuple(s.get("language") or body["language"] for s in body.get("segments", []))
    heard = Heard(body["text"], body["language"], time.perf_counter() - started, languages)
    return heard, reply.headers["x-pyparrot-model"]


async def pipeline(client: httpx.AsyncClient, sample: Sample, model: str) -> Heard:
    """``POST /v1/pipeline`` with no target language: its transcript stage alone."""
    started = time.perf_counter()
    reply = await _post(client, "/v1/pipeline", sample, {"model": model})
    body = reply.json()
    return Heard(body["transcript"], body["language"], time.perf_counter() - started)


def _pcm_for_wyoming(sample: Sample) -> tuple[bytes, int, int]:
    """What a Wyoming satellite would send: a WAV's own frames, rate and channels (the
    server converts), or for a compressed file its decoded 16 kHz mono s16."""
    if sample.suffix == "wav":
        import wave

        with wave.open(io.BytesIO(sample.data), "rb") as wav:
            return wav.readframes(wav.getnframes()), wav.getframerate(), wav.getnchannels()
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
    out = bytearray()
    with av.open(io.BytesIO(sample.data)) as container:
        for frame in container.decode(audio=0):
            for chunk in resampler.resample(frame):
                out += chunk.to_ndarray().tobytes()
    for chunk in resampler.resample(None):
        out += chunk.to_ndarray().tobytes()
    return bytes(out), 16_000, 1


async def wyoming(port: int, sample: Sample, model: str) -> Heard:
    """Wyoming ``transcribe`` + audio events; the ``transcript`` event's text and language."""
    pcm, rate, channels = _pcm_for_wyoming(sample)
    started = time.perf_counter()
    name = None if model == "whisper-1" else model
    async with AsyncTcpClient("127.0.0.1", port, 5, TIMEOUT_S) as client:
        await client.write_event(Transcribe(name=name).event())
        await client.write_event(AudioStart(rate, 2, channels).event())
        step = SAMPLES_PER_CHUNK * 2 * channels
        for i in range(0, len(pcm), step):
            chunk = AudioChunk(rate, 2, channels, pcm[i : i + step])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        while (event := await client.read_event()) is not None:
            if Transcript.is_type(event.type):
                result = Transcript.from_event(event)
                return Heard(result.text, result.language or "", time.perf_counter() - started)
    raise RuntimeError(f"Wyoming port {port} closed without a transcript")


async def live(gateway_url: str, sample: Sample, speed: float) -> Heard:
    """The finals of one ``/ws/converse`` session fed at ``speed`` times real time."""
    from bench.quality_live import live_text

    started = time.perf_counter()
    text = await live_text(gateway_url, sample.data, speed)
    return Heard(text, "", time.perf_counter() - started)


async def webrtc(gateway_url: str, sample: Sample) -> Heard:
    """The finals of one WebRTC session (a microphone: real time)."""
    from bench.quality_live import webrtc_text

    started = time.perf_counter()
    text = await webrtc_text(gateway_url, sample.data)
    return Heard(text, "", time.perf_counter() - started)
