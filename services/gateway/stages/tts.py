"""Speech synthesis through a TTS worker, streamed sentence by sentence, and the audio
encodings the OpenAI speech API offers (raw PCM, WAV, and PyAV-encoded mp3/opus/aac/flac).

The first chunk is awaited before a response starts, so a refused request (no worker,
unknown voice, empty text) still gets a proper HTTP status; after that, audio is passed on
as each sentence arrives.
"""

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np
import soxr

from services.gateway.core import Core, check_text, stream_replies
from services.gateway.errors import GatewayError, worker_error
from services.gateway.stages.workers import least_busy, live_workers, serving
from shared import streams
from shared.heartbeat import WorkerInfo
from shared.messages import AudioFormat, Envelope, ErrorResult, SpeechChunk, SynthesizeRequest

log = logging.getLogger(__name__)

SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
# OpenAI's voice names: any of them (or none) means "the default voice".
OPENAI_VOICES = frozenset(
    {"", "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer"}
    | {"verse", "marin", "cedar", "default"}
)
PCM_RATE_HZ = 24_000  # OpenAI's ``pcm`` is headerless 24 kHz s16le; clients assume it
MEDIA_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
# format -> (PyAV container, codec); opus only encodes at 48 kHz and a few lower rates.
CODECS = {
    "mp3": ("mp3", "libmp3lame"),
    "opus": ("ogg", "libopus"),
    "aac": ("adts", "aac"),
    "flac": ("flac", "flac"),
}


@dataclass(frozen=True)
class SpeechOptions:
    text: str
    voice: str = ""
    speed: float = 1.0
    language: str | None = None
    session: str | None = None  # with ``turn``: a live session's turn, cancellable
    turn: int = 0


def speakable(text: str) -> bool:
    """Whether a voice could say anything of ``text``: a reply piece of only "..." or "-"
    is not sent to a TTS worker (which would dead-letter it as ``empty_text``)."""
    return any(ch.isalnum() for ch in text)


async def tts_worker(core: Core, voice: str) -> WorkerInfo:
    """A live TTS worker serving ``voice``; OpenAI voice names pick the default voice."""
    live = await live_workers(core, "tts", "text-to-speech")
    if voice.lower() in OPENAI_VOICES:
        # Prefer English voices (OpenAI's are), then a stable order by name.
        return sorted(live, key=lambda w: ("en" not in w.languages, w.model))[0]
    return least_busy(serving(live, voice, "voice", "unknown_voice"), lambda w: 0)


async def voice_for(core: Core, language: str) -> WorkerInfo:
    """A live TTS worker whose voice speaks ``language``."""
    live = await live_workers(core, "tts", "text-to-speech")
    fit = [w for w in live if language in w.languages]
    if not fit:
        voices = sorted({f"{w.model} ({'/'.join(w.languages)})" for w in live})
        raise GatewayError(400, f"no voice speaks {language!r}; voices: {voices}", "no_voice")
    return least_busy(fit)


def _check(result: Envelope) -> SpeechChunk:
    if isinstance(result.payload, ErrorResult):
        raise worker_error("tts", result.payload)
    if not isinstance(result.payload, SpeechChunk):
        raise GatewayError(502, f"tts answered with {result.kind!r}", "bad_reply")
    return result.payload


async def speak(core: Core, options: SpeechOptions) -> AsyncIterator[SpeechChunk]:
    """Synthesise ``options.text`` and yield its chunks as the worker produces them."""
    check_text(options.text)
    worker = await tts_worker(core, options.voice)
    payload = SynthesizeRequest(
        text=options.text, voice=worker.model, speed=options.speed, language=options.language
    )
    timeout_s = core.settings.request_timeout_s
    job = core.bridge.job(payload, timeout_s, options.session, options.turn)
    async for result in stream_replies(core, streams.jobs("tts", worker.model), job, "tts"):
        yield _check(result)


async def start_speaking(core: Core, options: SpeechOptions) -> AsyncIterator[SpeechChunk]:
    """``speak``, with the first chunk already received (errors raise here, before any
    response is sent)."""
    chunks = speak(core, options)
    try:
        first = await anext(chunks)
    except BaseException:
        await chunks.aclose()
        raise

    async def rest() -> AsyncIterator[SpeechChunk]:
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    return rest()


def wav_header(fmt: AudioFormat) -> bytes:
    """A RIFF/WAVE header for a stream of unknown length (sizes 0xFFFFFFFF, as streaming
    servers write them; players read to the end)."""
    unknown = 0xFFFFFFFF
    byte_rate = fmt.sample_rate_hz * fmt.frame_bytes
    return (
        struct.pack("<4sI4s", b"RIFF", unknown, b"WAVE")
        + struct.pack(
            "<4sIHHIIHH",
            b"fmt ",
            16,
            1,  # PCM
            fmt.channels,
            fmt.sample_rate_hz,
            byte_rate,
            fmt.frame_bytes,
            8 * fmt.sample_width_bytes,
        )
        + struct.pack("<4sI", b"data", unknown)
    )


class SpeechStreamBroken(RuntimeError):
    """A failure after the response started; raised so the server breaks the connection."""


class _Sink:
    """A write-only file for PyAV: no ``seek``, so muxers write in stream order."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


class Encoder:
    """Turns mono PCM chunks into the bytes of one response format, incrementally."""

    def __init__(self, fmt: SpeechFormat, source: AudioFormat) -> None:
        self.fmt = fmt
        self.source = source
        # A WAV header goes out with the first audio, so its bytes and the speech leave together.
        self._header = wav_header(source) if fmt == "wav" else b""
        self._resampler: soxr.ResampleStream | None = None
        self._box: av.container.OutputContainer | None = None
        if fmt == "pcm" and source.sample_rate_hz != PCM_RATE_HZ:
            self._resampler = soxr.ResampleStream(
                source.sample_rate_hz, PCM_RATE_HZ, source.channels, dtype="int16"
            )
        if fmt in CODECS:
            container, codec = CODECS[fmt]
            self._sink = _Sink()
            self._box = av.open(self._sink, mode="w", format=container)
            rate = 48_000 if codec == "libopus" else source.sample_rate_hz
            self._stream = self._box.add_stream(codec, rate=rate)
            self._stream.layout = "mono"  # type: ignore[union-attr]
            self._av_resampler = av.AudioResampler(
                format=self._stream.format.name,  # type: ignore[union-attr]
                layout="mono",
                rate=rate,
            )

    def encode(self, pcm: bytes) -> bytes:
        """The bytes to send for one more chunk of PCM (may be empty while a codec buffers)."""
        header, self._header = self._header, b""
        if self._resampler is not None:
            samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, self.source.channels)
            return self._resampler.resample_chunk(samples).astype("<i2").tobytes()
        if self._box is None:
            return header + pcm
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.source.sample_rate_hz
        self._mux(self._av_resampler.resample(frame))
        return self._sink.take()

    def finish(self) -> bytes:
        """The bytes a codec still holds once all audio has been given."""
        if self._resampler is not None:
            empty = np.zeros((0, self.source.channels), dtype="<i2")
            return self._resampler.resample_chunk(empty, last=True).astype("<i2").tobytes()
        if self._box is None:
            return b""
        self._mux(self._av_resampler.resample(None))
        for packet in self._stream.encode(None):  # type: ignore[union-attr]
            self._box.mux(packet)
        self.close()
        return self._sink.take()

    def close(self) -> None:
        """Release the codec (safe to call twice)."""
        if self._box is not None:
            with contextlib.suppress(av.error.FFmpegError):
                self._box.close()
            self._box = None

    def _mux(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            for packet in self._stream.encode(frame):  # type: ignore[union-attr]
                self._box.mux(packet)  # type: ignore[union-attr]


async def encoded(chunks: AsyncIterator[SpeechChunk], fmt: SpeechFormat) -> AsyncIterator[bytes]:
    """Encode speech chunks into one response format, sending each sentence as it comes."""
    encoder: Encoder | None = None
    try:
        async for chunk in chunks:
            if encoder is None:
                encoder = Encoder(fmt, chunk.audio_format)
            # Codecs are CPU work (a few ms a sentence): keep them off the event loop.
            data = await asyncio.to_thread(encoder.encode, chunk.audio)
            if data:
                yield data
        if encoder is not None and (tail := await asyncio.to_thread(encoder.finish)):
            yield tail
    except GatewayError as exc:
        # Headers are sent: breaking the connection is the only way left to tell the client.
        log.warning("speech stream broken off: %s", exc.message)
        raise SpeechStreamBroken(exc.message) from exc
    finally:
        if encoder is not None:
            encoder.close()
