"""The Silero VAD that ships inside faster-whisper, opened with onnxruntime: the gateway's
streaming VAD and the speaker worker's whole-file one read the same model. Only the file is
read: faster-whisper (and so CTranslate2) is never imported."""

import importlib.util
from pathlib import Path

import onnxruntime

WINDOW = 512  # samples per score at 16 kHz (32 ms): what the model was trained on
CONTEXT = 64  # samples of the previous window the model sees before each one
RATE_HZ = 16_000


def model_path() -> Path:
    """Where faster-whisper keeps its bundled Silero model."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("faster-whisper (which bundles the Silero VAD model) is not installed")
    return Path(spec.submodule_search_locations[0]) / "assets" / "silero_vad_v6.onnx"


def load_session() -> onnxruntime.InferenceSession:
    """A single-threaded ONNX session of the VAD (``run`` is thread-safe, so it is shared)."""
    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 4
    return onnxruntime.InferenceSession(
        str(model_path()), providers=["CPUExecutionProvider"], sess_options=opts
    )
