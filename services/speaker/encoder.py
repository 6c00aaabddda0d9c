"""The GE2E speaker encoder (Resemblyzer's, exported by ``scripts/export_speaker_onnx.py``) on
onnxruntime, with its front end re-written in numpy so the worker needs neither torch nor
librosa.

An utterance is cut into 1.6 s partials (160 frames of 10 ms) at 1.3 per second, each partial
is embedded, and the mean of the partial embeddings, scaled to unit length, is the utterance's
embedding: Resemblyzer's ``embed_utterance``. The mel filterbank lives in the ONNX graph, so
the numpy side only frames the audio and takes a power spectrum.
"""

from pathlib import Path

import numpy as np
import onnxruntime

RATE_HZ = 16_000
N_FFT = 400  # 25 ms window
HOP = 160  # 10 ms step
PARTIAL_FRAMES = 160  # 1.6 s: the span the encoder was trained on
PARTIALS_PER_S = 1.3
MIN_COVERAGE = 0.75  # a last partial shorter than this share of 1.6 s is dropped
TARGET_DBFS = -30.0
EMBEDDING_SIZE = 256
MODEL_PATH = Path(__file__).parent / "assets" / "ge2e_encoder.onnx"
# librosa's default window is the periodic Hann window (scipy's ``fftbins=True``).
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def load_session(path: Path = MODEL_PATH, threads: int = 1) -> onnxruntime.InferenceSession:
    """An ONNX session of the encoder (``run`` is thread-safe)."""
    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"], sess_options=opts
    )


def normalize_volume(wav: np.ndarray) -> np.ndarray:
    """Raise quiet audio to -30 dBFS RMS (never lower loud audio), as the encoder was trained."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if len(wav) else 0.0
    if rms <= 0:
        return wav.astype(np.float32)
    gain_db = TARGET_DBFS - 20 * np.log10(rms)
    return (wav * 10 ** (gain_db / 20) if gain_db > 0 else wav).astype(np.float32)


def power_spectrogram(wav: np.ndarray) -> np.ndarray:
    """|STFT|² frames (frames, N_FFT/2+1), centred and zero-padded like librosa's."""
    padded = np.pad(wav.astype(np.float32), N_FFT // 2)
    count = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:count]
    return np.square(np.abs(np.fft.rfft(frames * _WINDOW, axis=1))).astype(np.float32)


def partial_starts(n_samples: int) -> list[int]:
    """First frame of each 1.6 s partial covering ``n_samples`` (at least one)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round(RATE_HZ / PARTIALS_PER_S / HOP))
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    coverage = (n_samples - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts


def embed_partials(session: onnxruntime.InferenceSession, wav: np.ndarray) -> np.ndarray:
    """Unit-length embeddings (partials, 256) of 16 kHz float audio."""
    starts = partial_starts(len(wav))
    needed = (starts[-1] + PARTIAL_FRAMES) * HOP
    if needed >= len(wav):
        wav = np.pad(wav, (0, needed - len(wav)))
    power = power_spectrogram(wav)
    batch = np.stack([power[s : s + PARTIAL_FRAMES] for s in starts])
    (embeddings,) = session.run(None, {"power": batch})
    return np.asarray(embeddings, dtype=np.float32)


def embed_utterance(session: onnxruntime.InferenceSession, wav: np.ndarray) -> np.ndarray:
    """One unit-length embedding (256,) of an utterance: the mean of its partials'."""
    mean = embed_partials(session, wav).mean(axis=0)
    return mean / np.linalg.norm(mean)
