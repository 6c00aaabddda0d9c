"""The live benchmark's audio: the lecture clip, when each of its words is spoken (from an
offline transcription with word timestamps), and a sender paced like a microphone.

Every system gets the same 16 kHz mono s16 bytes in the same ``chunk_s`` pieces, each sent
when a microphone would have it (chunk ``i`` at ``t0 + (i + 1) * chunk_s``). A word counts
as *spoken* when the chunk holding its last sample has been sent: the earliest moment any
system could know it, so the client's own chunking is not charged to the systems.
"""

import asyncio
import hashlib
import math
import time
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench import REPO
from shared.textnorm import normalize, wer

if TYPE_CHECKING:
    import numpy as np

    from services.tts.engine import TtsEngine

RATE_HZ = 16_000
SAMPLE_BYTES = 2
LECTURE = REPO / "tests" / "data" / "en_lecture.wav"  # the same file as ../shared/audio/


@dataclass(frozen=True)
class Clip:
    """The audio every system is fed, with its reference text."""

    name: str
    pcm: bytes  # 16 kHz mono s16le
    reference: str
    copies: int = 1  # the same recording this many times, each ``period_s`` after the last
    period_s: float = 0.0
    recording_bytes: int = 0  # one copy's length

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / (RATE_HZ * SAMPLE_BYTES)

    def chunks(self, chunk_s: float) -> list[bytes]:
        """The clip cut into ``chunk_s`` pieces (the last one may be shorter)."""
        step = int(RATE_HZ * chunk_s) * SAMPLE_BYTES
        return [self.pcm[i : i + step] for i in range(0, len(self.pcm), step)]


@dataclass(frozen=True)
class SpokenWord:
    """One normalised word of the offline transcription and where it lies in the clip."""

    word: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Offline:
    """The whole clip transcribed in one call by the same model and settings."""

    text: str
    words: list[SpokenWord]
    seconds: float
    wer: float


def piper_16k(voice: "TtsEngine", text: str) -> "np.ndarray":
    """``text`` read by ``voice``, as 16 kHz float32 samples in [-1, 1]."""
    import numpy as np
    import soxr

    pcm = b"".join(voice.synthesize(text, 1.0))
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    return soxr.resample(audio, voice.sample_rate_hz, RATE_HZ).astype(np.float32)


def spoken_clip(text_path: Path, cache: Path) -> Path:
    """A 16 kHz WAV of ``text_path`` read by the bundled Piper voice (with the text beside
    it, as ``load_clip`` wants), made once and kept in ``cache``."""
    text = text_path.read_text().strip()
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    wav_path = cache / f"{text_path.stem}-{digest}.wav"
    if not wav_path.exists():
        from services.tts.model import load_model
        from services.tts.settings import TtsSettings
        from shared.audio import float32_to_pcm16

        audio = piper_16k(load_model(TtsSettings()), text)
        cache.mkdir(parents=True, exist_ok=True)
        partial = wav_path.with_suffix(".tmp")
        with wave.open(str(partial), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(SAMPLE_BYTES)
            wav.setframerate(RATE_HZ)
            wav.writeframes(float32_to_pcm16(audio))
        wav_path.with_suffix(".txt").write_text(text + "\n")
        partial.replace(wav_path)
    return wav_path


def load_clip(path: Path, repeat: int = 1, gap_s: float = 1.0) -> Clip:
    """``path`` (16 kHz mono s16 WAV, reference text in ``.txt`` beside it), ``repeat`` times
    with ``gap_s`` of silence between the copies."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (RATE_HZ, 1, 2):
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit PCM")
        pcm = wav.readframes(wav.getnframes())
    gap = bytes(int(gap_s * RATE_HZ) * SAMPLE_BYTES)
    text = path.with_suffix(".txt").read_text().strip()
    name = path.name if repeat == 1 else f"{path.name} ×{repeat} ({gap_s:g} s apart)"
    period_s = (len(pcm) + len(gap)) / (RATE_HZ * SAMPLE_BYTES)
    joined = gap.join([pcm] * repeat)
    return Clip(name, joined, " ".join([text] * repeat), repeat, period_s, len(pcm))


def transcribe_offline(clip: Clip) -> Offline:
    """The recording in one call of the STT worker's own ``transcribe`` (defaults: tiny.en,
    int8, beam 1, 2 threads), with word timestamps; its words repeated for each copy.

    One copy, not the whole clip: a recording said twice in one 30 s window looks "too
    repetitive" to Whisper, whose temperature fallback then decodes it six times over."""
    from services.stt.handler import transcribe  # loads faster-whisper: only when asked
    from services.stt.model import load_model
    from services.stt.settings import SttSettings
    from shared.messages import TranscribeRequest

    settings = SttSettings()
    model = load_model(settings)
    one = clip.pcm[: clip.recording_bytes or len(clip.pcm)]
    started = time.perf_counter()
    result = transcribe(model, settings, TranscribeRequest(audio=one, word_timestamps=True))
    seconds = time.perf_counter() - started
    words = [
        SpokenWord(token, w.start_s + k * clip.period_s, w.end_s + k * clip.period_s)
        for k in range(clip.copies)
        for segment in result.segments
        for w in segment.words
        for token in normalize(w.word)
    ]
    text = " ".join([result.text] * clip.copies)
    return Offline(text, words, seconds, wer(clip.reference, text))


@dataclass(frozen=True)
class Timeline:
    """When each chunk of one session's audio was sent (``time.time()`` seconds)."""

    sent: list[float]
    chunk_s: float

    def heard_at(self, position_s: float) -> float:
        """When the chunk holding the sample just before ``position_s`` was sent."""
        index = max(0, math.ceil(position_s / self.chunk_s - 1e-9) - 1)
        return self.sent[min(index, len(self.sent) - 1)]

    def started_at(self, position_s: float) -> float:
        """When the chunk holding the sample at ``position_s`` was sent."""
        index = max(0, int(position_s / self.chunk_s + 1e-9))
        return self.sent[min(index, len(self.sent) - 1)]

    @property
    def end(self) -> float:
        """When the last chunk was sent: the end of the audio."""
        return self.sent[-1]


async def paced(
    chunks: list[bytes],
    chunk_s: float,
    send: Callable[[bytes], Awaitable[None]],
    speed: float = 1.0,
) -> Timeline:
    """Send ``chunks`` at ``speed`` times real time, against the clock (not a sleep per
    chunk), as a microphone delivers them: chunk ``i`` once ``(i + 1) * chunk_s`` has passed."""
    loop = asyncio.get_running_loop()
    origin = loop.time()
    sent = []
    for i, chunk in enumerate(chunks):
        await asyncio.sleep(max(0.0, origin + (i + 1) * chunk_s / speed - loop.time()))
        await send(chunk)
        sent.append(time.time())
    return Timeline(sent, chunk_s)
