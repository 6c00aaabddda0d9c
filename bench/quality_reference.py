"""The reference every product path is held to: the model called the plain way, in-process.

faster-whisper's own ``decode_audio`` reads the uploaded file and ``WhisperModel.transcribe``
runs with the product's model, beam and VAD settings and every other argument at its default:
none of the product's code (its decoder, windows, drop rules, language routing) is involved,
so a word the product loses is not lost here too.
"""

import io
import os
import time
from dataclasses import dataclass

from bench.quality_corpus import Sample

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from faster_whisper import WhisperModel, decode_audio  # noqa: E402


@dataclass(frozen=True)
class Heard:
    text: str
    language: str
    seconds: float
    languages: tuple[str, ...] = ()  # per segment, where the path reports them


def load(name: str, threads: int = 2) -> WhisperModel:
    """A bundled model ('tiny.en' or 'base') exactly as the STT worker would find it."""
    from services.stt.model import resolve_model_path
    from services.stt.settings import SttSettings

    path = resolve_model_path(SttSettings(model=name))
    return WhisperModel(
        str(path), device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True
    )


def plain(model: WhisperModel, sample: Sample, beam_size: int = 1, vad: bool = True) -> Heard:
    """``sample`` transcribed by ``model`` with nothing but faster-whisper."""
    started = time.perf_counter()
    audio = decode_audio(io.BytesIO(sample.data))
    segments, info = model.transcribe(audio, beam_size=beam_size, vad_filter=vad)
    text = " ".join(s.text.strip() for s in segments)
    return Heard(text, info.language, time.perf_counter() - started)
