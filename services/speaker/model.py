"""Loading the speaker stage's two ONNX models: the GE2E encoder shipped in ``assets/`` and the
Silero VAD read from faster-whisper's package. The only module that builds sessions."""

import logging
import time
from dataclasses import dataclass

import numpy as np
import onnxruntime

from services.speaker import encoder, vad
from services.speaker.settings import SpeakerSettings
from shared import silero

log = logging.getLogger(__name__)

MODEL_NAME = "ge2e"


@dataclass(frozen=True)
class SpeakerModel:
    encoder: onnxruntime.InferenceSession
    vad: onnxruntime.InferenceSession
    name: str = MODEL_NAME


def load_model(settings: SpeakerSettings) -> SpeakerModel:
    """Both sessions, warmed up by one call each before the worker says it is ready."""
    started = time.perf_counter()
    model = SpeakerModel(encoder.load_session(threads=settings.threads), silero.load_session())
    silence = np.zeros(silero.RATE_HZ, dtype=np.float32)
    encoder.embed_partials(model.encoder, silence)
    vad.probabilities(model.vad, silence)
    log.info("speaker model %s ready in %.2fs", model.name, time.perf_counter() - started)
    return model
