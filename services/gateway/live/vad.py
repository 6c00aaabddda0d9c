"""Streaming Silero VAD: the ONNX model that ships inside faster-whisper, run with onnxruntime.

faster-whisper's own wrapper resets the LSTM state on every call (it scores whole files);
live audio arrives in small chunks, so this wrapper carries the state and the 64-sample
context between calls. We only read the model file: the gateway never imports
faster-whisper (and so never loads CTranslate2).
"""

import functools

import numpy as np
import onnxruntime

from shared.silero import CONTEXT, WINDOW, load_session


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
