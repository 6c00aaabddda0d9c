"""The Coqui TTS engine: a user-supplied local model; the only module importing ``TTS``.

``TTS_COQUI_MODEL_DIR`` holds ``config.json`` and ``model.pth`` as Coqui saves them (a VITS
voice, say). Nothing is downloaded: Coqui's named models come from a hub this service never
contacts. The model is single-speaker and vocoder-free (end-to-end like VITS); a model that
outputs spectrograms is vocoded with Griffin-Lim, which is what Coqui does without a vocoder.

Text is split into sentences here and each is synthesised on its own, so the first
sentence's audio is sent before the rest are synthesised.
"""

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from services.tts.engine import split_sentences
from services.tts.settings import TtsSettings

try:
    import torch
    from TTS.utils.synthesizer import Synthesizer
except (ImportError, OSError) as exc:  # OSError: a torchaudio built for CUDA, on a CPU torch
    raise ImportError(
        "TTS_ENGINE=coqui needs the coqui-tts package, with a torch and torchaudio that load "
        f"together on this machine: {exc}"
    ) from exc

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "model.pth"


class CoquiError(RuntimeError):
    """The Coqui model folder is missing, incomplete or holds a model this engine cannot use."""


@dataclass(frozen=True)
class CoquiEngine:
    synthesizer: Synthesizer
    name: str
    language: str
    sample_rate_hz: int
    length_scale: float | None  # the model's own pace (VITS); None: its speed is fixed
    engine: str = "coqui"
    # One synthesis at a time: the speed is set on the shared model before each sentence.
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    @property
    def languages(self) -> list[str]:
        """ISO codes this voice speaks."""
        return [self.language]

    def count_sentences(self, text: str) -> int:
        """How many chunks ``synthesize`` will yield for ``text``."""
        return len(split_sentences(text, self.language))

    def synthesize(self, text: str, speed: float) -> Iterator[bytes]:
        """16-bit mono PCM at ``sample_rate_hz``, one model run per sentence, lazily."""
        for sentence in split_sentences(text, self.language):
            yield self._speak(sentence, speed)

    def _speak(self, sentence: str, speed: float) -> bytes:
        model: Any = self.synthesizer.tts_model
        with self.lock, torch.inference_mode():
            if self.length_scale is not None:
                model.length_scale = self.length_scale / speed  # longer scale, slower speech
            samples = self.synthesizer.tts(sentence, split_sentences=False)
        return pcm16(np.asarray(samples, dtype=np.float32))


def pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] as 16-bit little-endian PCM (clipped, not wrapped)."""
    return (np.clip(samples, -1.0, 1.0) * 32_767).astype("<i2").tobytes()


def model_files(settings: TtsSettings) -> tuple[Path, Path]:
    """The config and checkpoint in ``TTS_COQUI_MODEL_DIR``, or a load error naming what lacks."""
    if not settings.coqui_model_dir:
        raise CoquiError("TTS_ENGINE=coqui needs TTS_COQUI_MODEL_DIR (config.json + model.pth)")
    folder = Path(settings.coqui_model_dir).expanduser()
    config, checkpoint = folder / CONFIG_FILE, folder / CHECKPOINT_FILE
    missing = [p.name for p in (config, checkpoint) if not p.is_file()]
    if missing:
        raise CoquiError(f"TTS_COQUI_MODEL_DIR={str(folder)!r} lacks {', '.join(missing)}")
    return config, checkpoint


def model_language(settings: TtsSettings, config: Path) -> str:
    """``TTS_COQUI_LANGUAGE``, else the config's phoneme language (``en-us`` -> ``en``)."""
    if settings.coqui_language:
        return settings.coqui_language.lower()
    phoneme_language = json.loads(config.read_text(encoding="utf-8")).get("phoneme_language")
    return (phoneme_language or "en").split("-")[0].lower()


def load_coqui(settings: TtsSettings) -> CoquiEngine:
    """Load the single-speaker Coqui model in ``TTS_COQUI_MODEL_DIR`` on the CPU."""
    config, checkpoint = model_files(settings)
    torch.set_num_threads(settings.cpu_threads)
    try:
        synthesizer = Synthesizer(tts_checkpoint=checkpoint, tts_config_path=config, use_cuda=False)
    except (KeyError, ValueError, RuntimeError, json.JSONDecodeError) as exc:
        raise CoquiError(f"cannot load the Coqui model in {config.parent}: {exc!r}") from exc
    speakers = getattr(synthesizer.tts_model, "num_speakers", 0) or 0
    if speakers > 1:
        raise CoquiError(
            f"{config.parent} is a {speakers}-speaker model; give a single-speaker one"
        )
    name = settings.voice_name or f"coqui-{config.parent.name}"
    language = model_language(settings, config)
    rate = int(synthesizer.output_sample_rate)
    length_scale = getattr(synthesizer.tts_model, "length_scale", None)
    return CoquiEngine(synthesizer, name, language, rate, length_scale)
