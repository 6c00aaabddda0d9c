"""Spoken-language identification that does not trust an unsure guess.

Whisper guesses the language from the first 30 s in one encoder pass. When it is sure, that
guess stands. When it is not (robotic or accented speech, short clips), each candidate is
decoded and the one whose transcript the model finds most likely wins, since a decode in the
wrong language reads as less likely. Candidates are Whisper's own top guesses plus the
languages a deployment expects (``STT_LANGUAGE_CANDIDATES``). Figures: docs/BENCHMARKS.md.
"""

from dataclasses import dataclass

import numpy as np

from services.stt.model import SttModel
from services.stt.settings import SttSettings

WINDOW_SAMPLES = 30 * 16_000  # what Whisper's detection looks at
SCORE_SAMPLES = 10 * 16_000  # a candidate is judged on the first 10 s...
SCORE_TOKENS = 64  # ...and at most this many tokens (a wrong language can babble on)
MIN_RESCORE_SAMPLES = 16_000  # under 1 s of audio, decodes say little: keep the guess
TOP_GUESSES = 3


@dataclass(frozen=True)
class Choice:
    language: str
    probability: float  # Whisper's detection probability of the chosen language
    rescored: bool  # True when decoding, not the detection pass alone, decided
    guess: str = ""  # Whisper's own first guess, which decoding may have overruled


def candidates(model: SttModel, settings: SttSettings, guesses: list[str]) -> list[str]:
    """Whisper's top guesses, then the expected languages; each once, all transcribable."""
    ordered = [*guesses[:TOP_GUESSES], *settings.language_candidates]
    return [c for c in dict.fromkeys(ordered) if c in model.languages]


def _score(model: SttModel, settings: SttSettings, audio: np.ndarray, language: str) -> float:
    """Mean log-probability per token of a greedy decode in ``language`` (higher is likelier)."""
    segments, _info = model.whisper.transcribe(
        audio[:SCORE_SAMPLES],
        language=language,
        beam_size=1,
        temperature=0.0,
        max_new_tokens=SCORE_TOKENS,
        vad_filter=settings.vad_filter,
        without_timestamps=True,
        condition_on_previous_text=False,
    )
    weighted, tokens = 0.0, 0
    for seg in segments:
        weighted += seg.avg_logprob * len(seg.tokens)
        tokens += len(seg.tokens)
    return weighted / tokens if tokens else float("-inf")


def choose_language(
    model: SttModel, settings: SttSettings, audio: np.ndarray, rescore: bool = True
) -> Choice:
    """The spoken language of 16 kHz float32 ``audio`` for a multilingual model; with
    ``rescore`` False (live partials, which must be quick), Whisper's guess stands."""
    window = audio[:WINDOW_SAMPLES]
    language, probability, ranked = model.whisper.detect_language(
        window, vad_filter=settings.vad_filter
    )
    sure = probability >= settings.language_confidence
    if sure or not rescore or len(window) < MIN_RESCORE_SAMPLES:
        return Choice(language, probability, False)
    probs = dict(ranked)
    options = candidates(model, settings, [code for code, _p in ranked])
    if len(options) < 2:
        return Choice(language, probability, False)
    best = max(options, key=lambda code: _score(model, settings, window, code))
    return Choice(best, probs.get(best, 0.0), True, language)
