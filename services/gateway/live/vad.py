"""Streaming Silero VAD: the ONNX model that ships inside faster-whisper, run with onnxruntime.

faster-whisper's own wrapper resets the LSTM state on every call (it scores whole files);
live audio arrives in small chunks, so this wrapper carries the state and the 64-sample
context between calls. We only read the model file: the gateway never imports
faster-whisper (and so never loads CTranslate2).
"""

import functools
import importlib.util
from pathlib import Path

import numpy as np
import onnxruntime

WINDOW = 512  # samples per score at 16 kHz (32 ms): what the model was trained on
CONTEXT = 64
RATE_HZ = 16_000


def model_path() -> Path:
    """Where faster-whisper keeps its bundled Silero model."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("faster-whisper (which bundles the Silero VAD model) is not installed")
    return Path(spec.submodule_search_locations[0]) / "assets" / "silero_vad_v6.onnx"


def load_session() -> onnxruntime.InferenceSession:
    """One single-threaded ONNX session; sessions share it (``run`` is thread-safe)."""
    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 4
    return onnxruntime.InferenceSession(
        str(model_path()), providers=["CPUExecutionProvider"], sess_options=opts
    )


class StreamingVad:
    """Speech probability for each 32 ms window of a continuous 16 kHz stream."""

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        self.session = session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed float32 samples; return the complete windows and their speech probabilities."""
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        count = len(audio) // WINDOW
        self._pending = audio[count * WINDOW :]
        if count == 0:
            return np.zeros((0, WINDOW), dtype=np.float32), np.zeros(0, dtype=np.float32)
        windows = audio[: count * WINDOW].reshape(count, WINDOW)
        # Each window is scored with the 64 samples before it, as the model was trained.
        contexts = np.vstack([self._context[None, :], windows[:-1, -CONTEXT:]])
        batch = np.concatenate([contexts, windows], axis=1)
        probs, self._h, self._c = self.session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = windows[-1, -CONTEXT:].copy()
        return windows, np.asarray(probs, dtype=np.float32).reshape(-1)


@functools.cache
def shared_session() -> onnxruntime.InferenceSession:
    """The process's one VAD session (loaded on first use, ~50 ms)."""
    return load_session()
