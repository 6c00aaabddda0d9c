"""The quality harness's corpus: real and synthetic speech, long clips, other languages, and
the conditions users' audio comes in (gain, padding, noise, rooms, sample rates, channels,
codecs).

A ``Clip`` is clean 16 kHz float32 speech with its reference; ``variants`` turns clips into
``Sample`` files (bytes as a client would upload them) under named conditions.
"""

import functools
import io
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soxr

from bench import REPO

RATE_HZ = 16_000
AUDIO = REPO.parent / "shared" / "audio"  # the shared corpus beside the repo (see its README)
REAL = AUDIO / "real"
LECTURE_TEXT = REPO / "bench" / "data" / "lecture_long.txt"
PAUSE_S = 0.8  # between concatenated sentences: a reader's pause, not an utterance's end

# espeak-ng voices and sentences for the other languages (two each: language ID must hold
# on every clip, not on one lucky one).
SENTENCES = {
    "es": (
        "El tren de la mañana sale a las ocho y llega a Madrid antes del mediodía.",
        "Mi hermana trabaja en un hospital y vuelve a casa muy tarde todos los días.",
    ),
    "pt": (
        "O mercado da cidade abre cedo e vende frutas frescas e peixe do rio.",
        "Amanhã vamos visitar os nossos avós que moram numa aldeia perto do mar.",
    ),
    "de": (
        "Der Zug nach Berlin hat heute leider eine Stunde Verspätung.",
        "Meine Nachbarin backt jeden Sonntag einen großen Kuchen für die ganze Familie.",
    ),
    "fr": (
        "Le musée ouvre ses portes à neuf heures et ferme tard le jeudi soir.",
        "Nous avons acheté du pain frais et du fromage au marché ce matin.",
    ),
}
SWITCH_DE = (
    "Jetzt spreche ich Deutsch. Das Wetter war in dieser Woche kalt und nass, und viele Züge "
    "hatten Verspätung. Morgen soll endlich die Sonne scheinen, und am Wochenende fahren wir "
    "mit den Kindern an einen kleinen See in den Bergen."
)


@dataclass(frozen=True)
class Clip:
    name: str
    audio: np.ndarray  # 16 kHz mono float32
    reference: str  # "" when there is none: the in-process transcript stands in
    language: str  # the spoken language ("en+de" for a code-switched clip)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / RATE_HZ


@dataclass(frozen=True)
class Sample:
    clip: Clip
    condition: str  # "clean", "gain-40dB", "lead3s", "snr5", "rir2", "8kHz", "stereo", "mp3"...
    data: bytes  # the file a client uploads
    suffix: str  # its format, for the upload's file name

    @property
    def name(self) -> str:
        return f"{self.clip.name}/{self.condition}"


def read_wav(path: Path) -> np.ndarray:
    """A 16-bit WAV as float32 at 16 kHz mono."""
    with wave.open(str(path), "rb") as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.float32) / 32768
    pcm = pcm.reshape(-1, channels).mean(axis=1)
    return pcm if rate == RATE_HZ else soxr.resample(pcm, rate, RATE_HZ).astype(np.float32)


def espeak(text: str, voice: str, words_per_min: int = 150) -> np.ndarray:
    """``text`` read by an espeak-ng voice, at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (Debian package espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        cmd = ["espeak-ng", "-v", voice, "-s", str(words_per_min), "-w", str(out), text]
        subprocess.run(cmd, check=True, capture_output=True)
        return read_wav(out)


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE_HZ), np.float32)


def join(parts: list[np.ndarray], pause_s: float = PAUSE_S) -> np.ndarray:
    """Parts one after another with a reader's pause between them."""
    out: list[np.ndarray] = []
    for index, part in enumerate(parts):
        out += [_silence(pause_s)] * (index > 0) + [part]
    return np.concatenate(out)


def real_sentences() -> list[Clip]:
    """The 12 Harvard sentences read by two people."""
    clips = []
    for wav in sorted(REAL.glob("spk*_snt*.wav")):
        text = wav.with_suffix(".txt").read_text().strip()
        clips.append(Clip(f"real/{wav.stem}", read_wav(wav), text, "en"))
    return clips


def real_conversation() -> Clip:
    """30 s of two people talking; no reference text."""
    return Clip("real/conversation", read_wav(REAL / "pyannote_sample.wav"), "", "en")


def real_concatenated(sentences: list[Clip]) -> Clip:
    """All real sentences in a row (> 30 s): a long clip of human speech with pauses."""
    audio = join([c.audio for c in sentences])
    return Clip("long/real-12", audio, " ".join(c.reference for c in sentences), "en")


def lecture_32s() -> Clip:
    """The issue's case: a British espeak-ng voice reading ~32 s of lecture without a pause
    long enough to split it."""
    sentences = LECTURE_TEXT.read_text().split(". ")[:7]
    text = ". ".join(sentences).rstrip(".") + "."
    return Clip("long/lecture-32s-en-gb", espeak(text, "en-gb", 150), text, "en")


def lecture_long(sentences: list[Clip]) -> Clip:
    """Over 2 minutes: the whole lecture (espeak-ng, en-gb-x-rp) then the real sentences."""
    text = LECTURE_TEXT.read_text().strip()
    audio = join([espeak(text, "en-gb-x-rp", 160), *[c.audio for c in sentences]], 1.5)
    reference = " ".join([text, *[c.reference for c in sentences]])
    return Clip("long/lecture-2min", audio, reference, "en")


def synthetic() -> list[Clip]:
    """The shared synthetic clips: Piper's lecture, espeak-ng's short en/es/pt sentences."""
    clips = []
    for stem, language in (("en_lecture", "en"), ("en_short", "en"), ("es_short", "es")):
        text = (AUDIO / f"{stem}.txt").read_text().strip()
        clips.append(Clip(f"synthetic/{stem}", read_wav(AUDIO / f"{stem}.wav"), text, language))
    text = (AUDIO / "pt_short.txt").read_text().strip()
    clips.append(Clip("synthetic/pt_short", read_wav(AUDIO / "pt_short.wav"), text, "pt"))
    return clips


def languages(per_language: int = 2, codes: tuple[str, ...] = tuple(SENTENCES)) -> list[Clip]:
    """espeak-ng sentences in es/pt/de/fr (or ``codes``)."""
    voices = {"es": "es", "pt": "pt", "de": "de", "fr": "fr-fr"}
    return [
        Clip(f"lang/{code}{i + 1}", espeak(text, voices[code]), text, code)
        for code in codes
        for i, text in enumerate(SENTENCES[code][:per_language])
    ]


def code_switched() -> Clip:
    """Over 30 s of English (longer than Whisper's window, as in a meeting that changes
    language), a pause, then German (espeak-ng voices)."""
    english = ". ".join(LECTURE_TEXT.read_text().split(". ")[:7]).rstrip(".") + "."
    audio = join([espeak(english, "en-us"), espeak(SWITCH_DE, "de")], 1.0)
    return Clip("lang/en-then-de", audio, f"{english} {SWITCH_DE}", "en+de")


# ---- conditions -------------------------------------------------------------------------


@functools.cache
def _noise(index: int) -> np.ndarray:
    return read_wav(REAL / "noise" / f"noise{index}.wav")


@functools.cache
def _rir(index: int) -> np.ndarray:
    rir = read_wav(REAL / "rir" / f"rir{index}.wav")
    return rir / (np.abs(rir).max() or 1.0)


def rms_dbfs(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(audio**2)) + 1e-12))


def with_gain(audio: np.ndarray, dbfs: float) -> np.ndarray:
    """Scaled to an RMS of ``dbfs`` (clipped at full scale)."""
    return np.clip(audio * 10 ** ((dbfs - rms_dbfs(audio)) / 20), -1, 1).astype(np.float32)


def with_noise(audio: np.ndarray, snr_db: float, index: int) -> np.ndarray:
    """Noise file ``index`` (looped) under the speech at ``snr_db``."""
    noise = np.resize(_noise(index), len(audio))
    scale = 10 ** ((rms_dbfs(audio) - rms_dbfs(noise) - snr_db) / 20)
    return np.clip(audio + scale * noise, -1, 1).astype(np.float32)


def with_room(audio: np.ndarray, index: int) -> np.ndarray:
    """Convolved with room impulse response ``index``, at the dry speech's level."""
    rir = _rir(index)
    size = len(audio) + len(rir) - 1
    wet = np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(rir, size), size)[: len(audio)]
    return with_gain(wet.astype(np.float32), rms_dbfs(audio))


def wav_bytes(audio: np.ndarray, rate: int = RATE_HZ, channels: int = 1) -> bytes:
    """16-bit WAV at ``rate`` (resampled) with ``channels`` identical channels."""
    if rate != RATE_HZ:
        audio = soxr.resample(audio, RATE_HZ, rate)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    if channels > 1:
        pcm = np.repeat(pcm[:, None], channels, axis=1)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return out.getvalue()


CODECS = {"mp3": ("mp3", "mp3", 44_100), "ogg": ("ogg", "libopus", 48_000)}
CODECS["webm"] = ("webm", "libopus", 48_000)


def encoded(audio: np.ndarray, kind: str) -> bytes:
    """``audio`` as an mp3 / ogg (Opus) / webm (Opus) file, encoded with PyAV."""
    container_format, codec, rate = CODECS[kind]
    samples = soxr.resample(audio, RATE_HZ, rate).astype(np.float32)
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def _conditioned(audio: np.ndarray, condition: str) -> tuple[bytes, str]:
    if condition == "clean":
        return wav_bytes(audio), "wav"
    if condition.startswith("gain"):
        return wav_bytes(with_gain(audio, float(condition[4:].removesuffix("dB")))), "wav"
    if condition.startswith("pad"):  # pad<lead>+<trail> in seconds
        lead, trail = (float(x) for x in condition[3:].removesuffix("s").split("+"))
        return wav_bytes(np.concatenate([_silence(lead), audio, _silence(trail)])), "wav"
    if condition.startswith("snr"):
        snr, noise = condition[3:].split("-n")
        return wav_bytes(with_noise(audio, float(snr), int(noise))), "wav"
    if condition.startswith("rir"):
        return wav_bytes(with_room(audio, int(condition[3:]))), "wav"
    if condition.endswith("Hz"):
        return wav_bytes(audio, int(float(condition[:-3]) * 1000)), "wav"
    if condition == "stereo":
        return wav_bytes(audio, channels=2), "wav"
    return encoded(audio, condition), condition


def variants(clips: list[Clip], conditions: list[str]) -> Iterator[Sample]:
    """Each clip under each condition, as the file a client would upload."""
    for clip in clips:
        for condition in conditions:
            data, suffix = _conditioned(clip.audio, condition)
            yield Sample(clip, condition, data, suffix)


QUICK_CONDITIONS = ["gain-40dB", "pad3+3s", "snr10-n1", "rir2", "8kHz", "stereo", "mp3"]
FULL_CONDITIONS = [
    "gain-40dB",
    "gain-26dB",
    "gain-6dB",
    "pad0.3+0.3s",
    "pad3+3s",
    "pad0+3s",
    "pad3+0s",
    "snr20-n1",
    "snr10-n1",
    "snr5-n1",
    "snr10-n3",
    "snr5-n4",
    "rir1",
    "rir2",
    "rir3",
    "rir4",
    "8kHz",
    "44.1kHz",
    "48kHz",
    "stereo",
    "mp3",
    "ogg",
    "webm",
]
