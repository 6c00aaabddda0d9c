"""Speech regions of a whole recording: the Silero VAD that ships inside faster-whisper, on
onnxruntime (the file is only read; faster-whisper and CTranslate2 are never imported)."""

from dataclasses import dataclass

import numpy as np
import onnxruntime

from shared.silero import CONTEXT, RATE_HZ, WINDOW

BATCH = 4_096  # windows per model call (~2 min of audio)


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.5
    release: float = 0.35  # once in speech, stay until the probability falls below this
    min_speech_s: float = 0.25
    min_silence_s: float = 0.3  # shorter pauses do not end a region


def probabilities(session: onnxruntime.InferenceSession, wav: np.ndarray) -> np.ndarray:
    """Speech probability of each 32 ms window of 16 kHz float audio."""
    count = -(-len(wav) // WINDOW)
    if count == 0:
        return np.zeros(0, dtype=np.float32)
    windows = np.pad(wav.astype(np.float32), (0, count * WINDOW - len(wav))).reshape(count, -1)
    # Each window is scored with the 64 samples before it, as the model was trained.
    contexts = np.vstack([np.zeros((1, CONTEXT), np.float32), windows[:-1, -CONTEXT:]])
    batch = np.concatenate([contexts, windows], axis=1)
    h = np.zeros((1, 1, 128), dtype=np.float32)
    c = np.zeros((1, 1, 128), dtype=np.float32)
    out = []
    for start in range(0, count, BATCH):
        probs, h, c = session.run(None, {"input": batch[start : start + BATCH], "h": h, "c": c})
        out.append(np.asarray(probs, dtype=np.float32).reshape(-1))
    return np.concatenate(out)


def regions(probs: np.ndarray, options: VadOptions) -> list[tuple[float, float]]:
    """(start_s, end_s) of each speech region, from window probabilities."""
    step_s = WINDOW / RATE_HZ
    found: list[list[float]] = []
    start: int | None = None
    for i, p in enumerate(probs):
        if start is None and p >= options.threshold:
            start = i
        elif start is not None and p < options.release:
            found.append([start * step_s, i * step_s])
            start = None
    if start is not None:
        found.append([start * step_s, len(probs) * step_s])
    merged: list[list[float]] = []
    for region in found:
        if merged and region[0] - merged[-1][1] < options.min_silence_s:
            merged[-1][1] = region[1]
        else:
            merged.append(region)
    return [(a, b) for a, b in merged if b - a >= options.min_speech_s]
