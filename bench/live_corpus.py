"""The live-accuracy corpus: real recordings, real sentences with long pauses inside them,
and lectures, each with the text the model gives in-process for the whole clip.

Pauses inside sentences are made from the real recordings: the in-process model's word
timings give the boundaries, and each sentence is split at one or two of them with 0.4-1.5 s
of silence or low noise put in, so a live session meets what a hesitant speaker does.
"""

import functools
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import REPO
from bench.live_clip import LECTURE, RATE_HZ, piper_16k, spoken_clip

REAL = REPO.parent / "shared" / "audio" / "real"
LONG_LECTURE = REPO / "bench" / "data" / "lecture_long.txt"
SENTENCE_GAP_S = 0.7  # between two read sentences: a reader's pause, shorter than a paused one
PAUSES_S = (0.4, 0.8, 1.1, 1.5)  # put inside sentences, in turn
NOISE_DBFS = -55.0  # "low noise": a quiet room's floor under a pause
# A speech read phrase by phrase, with a speaker's rhetorical pauses between (seconds).
RHETORIC = [
    ("And so, my fellow Americans,", 1.0),
    ("ask not", 0.8),
    ("what your country can do for you,", 1.2),
    ("ask what you can do", 0.9),
    ("for your country.", 0.0),
]


@dataclass(frozen=True)
class Item:
    """One clip: 16 kHz float32 audio and the human reference, if there is one."""

    name: str
    audio: np.ndarray
    reference: str = ""

    @property
    def pcm16(self) -> bytes:
        return (np.clip(self.audio, -1, 1) * 32767).astype("<i2").tobytes()

    @property
    def duration_s(self) -> float:
        return len(self.audio) / RATE_HZ


@dataclass(frozen=True)
class Heard:
    """The in-process model's text of a clip and its words' (start, end) times."""

    text: str
    words: list[tuple[float, float]]


def read_wav(path: Path) -> np.ndarray:
    """A 16 kHz mono s16 WAV as float32."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (RATE_HZ, 1, 2):
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit PCM")
        pcm = wav.readframes(wav.getnframes())
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768


@functools.cache
def _model(name: str = "tiny.en"):  # type: ignore[no-untyped-def]
    from faster_whisper import WhisperModel

    from services.stt.model import resolve_model_path
    from services.stt.settings import SttSettings

    s = SttSettings(model=name)
    path = resolve_model_path(s)
    return WhisperModel(str(path), device="cpu", compute_type=s.compute_type, cpu_threads=2)


def in_process(audio: np.ndarray, model: str = "tiny.en") -> Heard:
    """The plain ``WhisperModel.transcribe`` of the whole clip, with the STT worker's model,
    beam and VAD (nothing of the product's code between): the reference."""
    from services.stt.settings import SttSettings

    s = SttSettings()
    segments, _info = _model(model).transcribe(
        audio, language="en", beam_size=s.beam_size, vad_filter=s.vad_filter,
        word_timestamps=True,
    )  # fmt: skip
    segments = list(segments)
    words = [(w.start, w.end) for seg in segments for w in seg.words or []]
    return Heard(" ".join(seg.text.strip() for seg in segments), words)


def _silence(seconds: float, noisy: bool, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * RATE_HZ)
    if not noisy:
        return np.zeros(n, dtype=np.float32)
    return (rng.standard_normal(n) * 10 ** (NOISE_DBFS / 20)).astype(np.float32)


def paused(audio: np.ndarray, cuts: int, turn: int, rng: np.random.Generator) -> np.ndarray:
    """``audio`` (one sentence) with a pause put in at ``cuts`` word boundaries inside it."""
    words = in_process(audio).words
    if len(words) < 3:
        return audio
    inner = range(1, len(words))
    picks = sorted({inner[len(inner) * (k + 1) // (cuts + 1)] for k in range(cuts)})
    pieces, at = [], 0
    for n, i in enumerate(picks):
        cut = int((words[i - 1][1] + words[i][0]) / 2 * RATE_HZ)
        pause = PAUSES_S[(turn + n) % len(PAUSES_S)]
        pieces += [audio[at:cut], _silence(pause, (turn + n) % 2 == 1, rng)]
        at = cut
    return np.concatenate([*pieces, audio[at:]])


def _joined(parts: list[np.ndarray], gap_s: float) -> np.ndarray:
    gap = np.zeros(int(gap_s * RATE_HZ), dtype=np.float32)
    out: list[np.ndarray] = []
    for part in parts:
        out += [part, gap]
    return np.concatenate(out[:-1])


def _speaker(name: str, pauses: bool) -> Item:
    paths = sorted(REAL.glob(f"{name}_snt*.wav"))
    rng = np.random.default_rng(17)
    sentences = [read_wav(p) for p in paths]
    if pauses:
        sentences = [paused(a, 1 + k % 2, k, rng) for k, a in enumerate(sentences)]
    text = " ".join(p.with_suffix(".txt").read_text().strip() for p in paths)
    gap_s = 1.0 if pauses else SENTENCE_GAP_S
    return Item(f"{name} {'paused' if pauses else 'read'}", _joined(sentences, gap_s), text)


def _rhetoric() -> Item:
    from services.tts.model import load_model
    from services.tts.settings import TtsSettings

    voice = load_model(TtsSettings())
    parts = []
    for phrase, pause_s in RHETORIC:
        parts += [piper_16k(voice, phrase), np.zeros(int(pause_s * RATE_HZ), dtype=np.float32)]
    text = " ".join(phrase for phrase, _pause in RHETORIC)
    return Item("rhetorical pauses (Piper)", np.concatenate(parts), text)


def _espeak(text: str) -> np.ndarray:
    import soxr

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", "en-gb", "-w", str(out), text], check=True)
        with wave.open(str(out), "rb") as wav:
            rate = wav.getframerate()
            pcm = wav.readframes(wav.getnframes())
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    return soxr.resample(audio, rate, RATE_HZ).astype(np.float32)


def corpus(cache: Path) -> list[Item]:
    """Every clip, built once (Piper's long lecture is kept in ``cache``)."""
    items = [_speaker(n, p) for p in (False, True) for n in ("spk1", "spk2")]
    items.append(Item("conversation (pyannote)", read_wav(REAL / "pyannote_sample.wav")))
    lecture_text = LECTURE.with_suffix(".txt").read_text().strip()
    items.append(Item("lecture (Piper)", read_wav(LECTURE), lecture_text))
    long_path = spoken_clip(LONG_LECTURE, cache)
    long_text = LONG_LECTURE.read_text().strip()
    items.append(Item("long lecture (Piper)", read_wav(long_path), long_text))
    sentences = long_text.split(". ")
    first = ". ".join(sentences[:7]) + "."
    items.append(Item("lecture (espeak-ng en-gb)", _espeak(first), first))
    items.append(_rhetoric())
    return items
