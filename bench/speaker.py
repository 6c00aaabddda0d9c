"""Speaker stage: diarization error rate and identification of enrolled voices.

- DER (pyannote.metrics) on ``pyannote_sample.wav`` against its ``.rttm``, and on conversations
  built from the two Harvard readers (``spk1_*``, ``spk2_*``) with turns of 2-5 s;
- identification: each reader enrolled from two sentences, their other sentences identified
  against both voiceprints, and synthetic voices (Piper, espeak-ng) that were never enrolled
  offered as impostors (a false accept is an impostor matched to anyone);
- time of one ``embed`` job per live-sized utterance, which a live final would wait for.

The figures above run the worker's handler in-process on the shipped ONNX models;
``bench.speaker_live`` then measures the same through the gateway (uploads, live sessions).
"""

import random
import statistics
import subprocess
import tempfile
import time
import warnings
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from services.speaker.handler import analyse
from services.speaker.model import SpeakerModel, load_model
from services.speaker.settings import SpeakerSettings
from shared.audio import float32_to_pcm16
from shared.messages import AudioFormat, SpeakerRequest, SpeakerResult

REAL = Path(__file__).resolve().parents[2] / "shared" / "audio" / "real"
RATE_HZ = 16_000
FORMAT = AudioFormat(sample_rate_hz=RATE_HZ)
COLLAR_S = 0.25  # NIST's: +-0.25 s around each reference boundary is not scored
ENROL_SENTENCES = (1, 2)
THRESHOLD = 0.75  # the gateway's default SPEAKER match threshold (cosine)
IMPOSTOR_TEXTS = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
)


@dataclass(frozen=True)
class SpeakerConfig:
    conversations: int = 10
    seed: int = 4
    live_rounds: int = 3  # pairs of live sessions, with and without the speaker worker
    live_speed: float = 2.0  # times real time


FULL = SpeakerConfig()
QUICK = SpeakerConfig(conversations=3, live_rounds=1, live_speed=4.0)


@dataclass
class SpeakerBenchResult:
    der: dict[str, float] = field(default_factory=dict)  # case -> DER
    speakers_found: dict[str, int] = field(default_factory=dict)
    conversation_der: list[float] = field(default_factory=list)
    conversation_der_known: list[float] = field(default_factory=list)
    conversation_counts: list[int] = field(default_factory=list)
    genuine: list[tuple[str, str, float, float]] = field(default_factory=list)  # who, best, cos
    impostors: list[tuple[str, float]] = field(default_factory=list)  # voice, best cosine
    embed_s: list[float] = field(default_factory=list)
    diarize_s: float = 0.0
    product: Any = None  # bench.speaker_live.ProductResult


def read(path: Path) -> np.ndarray:
    """A 16 kHz mono s16 WAV as float32."""
    with wave.open(str(path), "rb") as f:
        assert f.getframerate() == RATE_HZ and f.getnchannels() == 1, path
        return np.frombuffer(f.readframes(f.getnframes()), "<i2").astype(np.float32) / 32768


def request(wav: np.ndarray, task: str = "diarize", **kw: object) -> SpeakerRequest:
    return SpeakerRequest(audio=float32_to_pcm16(wav), audio_format=FORMAT, task=task, **kw)


def _annotation(turns: list[tuple[float, float, str]]):  # noqa: ANN202 (pyannote is a dev dep)
    from pyannote.core import Annotation, Segment

    out = Annotation()
    for start, end, label in turns:
        out[Segment(start, end)] = label
    return out


def der(reference: list[tuple[float, float, str]], result: SpeakerResult) -> float:
    """Diarization error rate with a +-0.25 s collar, overlaps scored."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    hypothesis = [(t.start_s, t.end_s, t.speaker) for t in result.turns]
    # pyannote's collar is the whole width removed around a boundary (half on each side).
    metric = DiarizationErrorRate(collar=2 * COLLAR_S, skip_overlap=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "uem approximated by the union of both extents"
        return float(metric(_annotation(reference), _annotation(hypothesis)))


def rttm(path: Path) -> list[tuple[float, float, str]]:
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        start, length = float(parts[3]), float(parts[4])
        out.append((start, start + length, parts[7]))
    return out


def speech_extent(wav: np.ndarray) -> tuple[int, int]:
    """First and last sample of a clip louder than -40 dB under its peak (20 ms frames)."""
    frames = wav[: len(wav) // 320 * 320].reshape(-1, 320)
    level = np.sqrt(np.mean(frames**2, axis=1))
    loud = np.flatnonzero(level > level.max() * 0.01)
    return int(loud[0] * 320), int((loud[-1] + 1) * 320)


def conversation(rng: random.Random) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Alternating turns of one or two sentences (2-5 s) from the two readers, 0.2-0.8 s apart."""
    clips = {
        who: [read(REAL / f"{who}_snt{i}.wav") for i in range(1, 7)] for who in ("spk1", "spk2")
    }
    pieces, reference, t = [], [], 0.0
    who = rng.choice(["spk1", "spk2"])
    for _ in range(rng.randint(6, 9)):
        turn = np.zeros(0, np.float32)
        while len(turn) < 2 * RATE_HZ:
            clip = rng.choice(clips[who])
            start, end = speech_extent(clip)
            turn = np.concatenate([turn, clip[start:end]])
        turn = turn[: 5 * RATE_HZ]
        gap = np.zeros(int(rng.uniform(0.2, 0.8) * RATE_HZ), np.float32)
        reference.append((t, t + len(turn) / RATE_HZ, who))
        pieces += [turn, gap]
        t += (len(turn) + len(gap)) / RATE_HZ
        who = "spk2" if who == "spk1" else "spk1"
    return np.concatenate(pieces), reference


def synthetic_voices() -> dict[str, list[np.ndarray]]:
    """Impostor utterances: Piper's joe and espeak-ng's default English voice."""
    from piper import PiperVoice  # the TTS extra

    from services.tts.piper_engine import resolve_voice_path
    from services.tts.settings import TtsSettings

    voice = PiperVoice.load(str(resolve_voice_path(TtsSettings())))
    rate = voice.config.sample_rate
    piper = []
    for text in IMPOSTOR_TEXTS:
        audio = np.concatenate([c.audio_float_array for c in voice.synthesize(text)])
        piper.append(soxr.resample(audio, rate, RATE_HZ).astype(np.float32))
    espeak = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(IMPOSTOR_TEXTS):
            out = Path(tmp) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-w", str(out), text], check=True)
            with wave.open(str(out), "rb") as f:
                rate, raw = f.getframerate(), f.readframes(f.getnframes())
            audio = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
            espeak.append(soxr.resample(audio, rate, RATE_HZ).astype(np.float32))
    return {"piper-joe": piper, "espeak-ng-en": espeak}


def embedding(model: SpeakerModel, settings: SpeakerSettings, wav: np.ndarray) -> np.ndarray:
    result = analyse(model, settings, request(wav, "embed"))
    return np.asarray(result.speakers[0].embedding)


def identify(model: SpeakerModel, settings: SpeakerSettings, out: SpeakerBenchResult) -> None:
    """Enrol each reader from two sentences; score their other sentences and the impostors."""
    gap = np.zeros(RATE_HZ // 4, np.float32)
    enrolled = {}
    for who in ("spk1", "spk2"):
        joined = np.concatenate(
            [x for i in ENROL_SENTENCES for x in (read(REAL / f"{who}_snt{i}.wav"), gap)]
        )
        enrolled[who] = embedding(model, settings, joined)
    for who in ("spk1", "spk2"):
        for i in range(1, 7):
            if i in ENROL_SENTENCES:
                continue
            wav = read(REAL / f"{who}_snt{i}.wav")
            started = time.perf_counter()
            probe = embedding(model, settings, wav)
            out.embed_s.append(time.perf_counter() - started)
            scores = {name: float(probe @ e) for name, e in enrolled.items()}
            best = max(scores, key=scores.__getitem__)
            other = min(scores.values())
            out.genuine.append((f"{who}_snt{i}", best, scores[best], other))
    for voice, clips in synthetic_voices().items():
        for wav in clips:
            probe = embedding(model, settings, wav)
            out.impostors.append((voice, max(float(probe @ e) for e in enrolled.values())))


def run(config: SpeakerConfig) -> SpeakerBenchResult:
    """Every measurement of this benchmark."""
    settings = SpeakerSettings()
    model = load_model(settings)
    out = SpeakerBenchResult()
    sample = read(REAL / "pyannote_sample.wav")
    reference = rttm(REAL / "pyannote_sample.rttm")
    for case, count in (("estimated", None), ("known (2)", 2)):
        started = time.perf_counter()
        result = analyse(model, settings, request(sample, num_speakers=count))
        if count is None:
            out.diarize_s = time.perf_counter() - started
        out.der[case] = der(reference, result)
        out.speakers_found[case] = len(result.speakers)
    rng = random.Random(config.seed)
    for _ in range(config.conversations):
        wav, reference = conversation(rng)
        result = analyse(model, settings, request(wav))
        out.conversation_der.append(der(reference, result))
        out.conversation_counts.append(len(result.speakers))
        known = analyse(model, settings, request(wav, num_speakers=2))
        out.conversation_der_known.append(der(reference, known))
    identify(model, settings, out)
    from bench import speaker_live  # its processes start after the in-process part

    out.product = speaker_live.run_product(config.live_rounds, config.live_speed)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
