"""Loading the configured TTS engine(s): piper, espeak or coqui, chosen by ``TTS_ENGINE``.

Each engine lives in its own module, the only one importing its library; this module
imports just the chosen one, so a piper worker never needs torch and a coqui worker never
needs onnxruntime. Every engine is warmed up here, before the worker says "ready".
"""

import logging
import time

from services.tts.engine import TtsEngine
from services.tts.settings import TtsSettings

log = logging.getLogger(__name__)

TtsModel = TtsEngine  # what the handler and its callers have always called a loaded voice


def _load(settings: TtsSettings) -> list[TtsEngine]:
    if settings.engine == "espeak":
        from services.tts.espeak_engine import load_espeak

        return list(load_espeak(settings))
    if settings.engine == "coqui":
        from services.tts.coqui_engine import load_coqui

        return [load_coqui(settings)]
    from services.tts.piper_engine import load_piper

    return [load_piper(settings)]


def load_models(settings: TtsSettings) -> list[TtsEngine]:
    """Every voice this worker serves (espeak can serve several), warmed up, load time logged."""
    started = time.perf_counter()
    engines = _load(settings)
    for engine in engines:
        # First runs allocate (ONNX Runtime, torch) and are several times slower: pay for
        # that before "ready", so the first client does not.
        for _ in engine.synthesize("Ready.", 1.0):
            pass
    names = ", ".join(engine.name for engine in engines)
    log.info(
        "loaded %s TTS voice(s) %s in %.2fs", settings.engine, names, time.perf_counter() - started
    )
    return engines


def load_model(settings: TtsSettings) -> TtsEngine:
    """The one voice these settings name (an error if ``TTS_ESPEAK_VOICE`` lists several)."""
    engines = load_models(settings)
    if len(engines) != 1:
        raise ValueError(f"settings name {len(engines)} voices; use load_models() for them all")
    return engines[0]
