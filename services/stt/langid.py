"""Spoken-language identification that does not trust an unsure guess.

Whisper guesses the language from the first 30 s of speech in one encoder pass. When it is
sure, that guess stands, whatever the language. When it is not (robotic or accented speech,
short clips, noise), the choice is made among the languages the deployment expects
(``STT_LANGUAGE_CANDIDATES``): an unsure guess of a language nobody speaks to this
deployment is likelier a misheard expected one. Each expected language is decoded greedily
from the same encoder output; decodes that ran past the speech or repeat themselves (how
Whisper makes text up in a wrong language) are set aside, and the likeliest of the rest, by
mean log-probability per token, wins, unless it only just beats Whisper's own guess. English
needs some detected English to compete: it is what Whisper writes when it cannot make the
audio out. Adding the detection probability to the score sank the languages it mishears
(Portuguese heard as Latin or Hungarian). The corpora and figures: docs/BENCHMARKS.md.
"""

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens
from faster_whisper.vad import collect_chunks, get_speech_timestamps

from services.stt.model import SttModel
from services.stt.settings import SttSettings

WINDOW_SAMPLES = 30 * 16_000  # what Whisper's detection looks at
SCORE_TOKENS = 64  # a candidate's decode budget (a wrong language can babble on)
MIN_RESCORE_SAMPLES = 16_000  # under 1 s of audio, decodes say little: keep the guess
MIN_EN = 0.2  # detection probability English needs to compete among the decodes
TIE_MARGIN = 0.1  # log-probability per token a decode must beat Whisper's own guess by


@dataclass(frozen=True)
class Choice:
    language: str
    probability: float  # Whisper's detection probability of the chosen language
    rescored: bool  # True when decoding, not the detection pass alone, decided
    guess: str  # Whisper's own first guess, which decoding may have overruled


@dataclass(frozen=True)
class Decoded:
    logprob: float  # mean per token (higher is likelier)
    text: str
    ended: bool  # stopped before running out of tokens: it ended with the speech

    @property
    def heard(self) -> bool:
        """False for Whisper's two ways of making text up in a wrong language: running on
        past the speech, and repeating itself (a loop scores a high log-probability)."""
        words = re.findall(r"\w+", self.text.lower())
        grams = list(zip(words, words[1:], words[2:], strict=False))
        return self.ended and len(grams) == len(set(grams))


def candidates(model: SttModel, settings: SttSettings) -> list[str]:
    """The expected languages this model can transcribe, each once."""
    return [c for c in dict.fromkeys(settings.language_candidates) if c in model.languages]


def decide(
    ranked: Sequence[tuple[str, float]],
    decoded: Callable[[str], Decoded],
    options: Sequence[str],
    confidence: float,
) -> tuple[str, bool]:
    """The language from Whisper's ranked detection and each of ``options`` decoded; True
    when the decodes decided. Only decodes the model seems to have heard compete, unless
    none was; the likeliest of them wins, unless it beats Whisper's own guess by less than
    ``TIE_MARGIN``."""
    guess, probability = ranked[0]
    if probability >= confidence or len(options) < 2:
        return guess, False
    detected = dict(ranked)
    # Whisper writes fluent English from audio it cannot make out, so English needs some
    # detected English to compete and gets no benefit of the doubt as the guess.
    options = [c for c in options if c != "en" or detected.get(c, 0.0) >= MIN_EN]
    pool = [code for code in options if decoded(code).heard] or options or [guess]
    best = max(pool, key=lambda code: decoded(code).logprob)
    # (A guess outside the pool is never decoded: it could only cost a decode.)
    if guess != "en" and guess in pool:
        if decoded(best).logprob - decoded(guess).logprob < TIE_MARGIN:
            return guess, True
    return best, True


def speech_window(settings: SttSettings, audio: np.ndarray) -> np.ndarray:
    """The first 30 s of ``audio``, without its non-speech when the VAD is on (as
    faster-whisper's own detection sees it)."""
    window = audio[:WINDOW_SAMPLES]
    if not settings.vad_filter:
        return window
    chunks, _meta = collect_chunks(window, get_speech_timestamps(window))
    speech = np.concatenate(chunks) if chunks else window
    return speech if len(speech) else window


def encode(model: SttModel, audio: np.ndarray) -> object:
    """The encoder's output for one 30 s window of 16 kHz ``audio``."""
    features = model.whisper.feature_extractor(audio[:WINDOW_SAMPLES])
    return model.whisper.encode(pad_or_trim(features))


def detect(model: SttModel, encoded: object) -> list[tuple[str, float]]:
    """Every language with Whisper's detection probability, likeliest first."""
    ranked = model.whisper.model.detect_language(encoded)[0]
    return [(token[2:-2], probability) for token, probability in ranked]


def decode(model: SttModel, encoded: object, language: str) -> Decoded:
    """A greedy decode in ``language`` from a shared encoder output, scored as faster-whisper
    scores a segment."""
    whisper = model.whisper
    tokenizer = Tokenizer(whisper.hf_tokenizer, True, task="transcribe", language=language)
    prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    result = whisper.model.generate(
        encoded,
        [prompt],
        max_length=len(prompt) + SCORE_TOKENS,
        return_scores=True,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
    )[0]
    tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
    if not tokens:
        return Decoded(float("-inf"), "", True)
    mean = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
    ended = len(tokens) < token_limit(len(prompt))
    return Decoded(mean, tokenizer.decode(tokens).strip(), ended)


def token_limit(prompt_tokens: int = 4) -> int:
    """The most tokens a candidate's decode yields: CTranslate2's Whisper stops at half of
    ``max_length`` (prompt included), not at ``max_length`` less the prompt."""
    return (prompt_tokens + SCORE_TOKENS) // 2


def choose_language(
    model: SttModel, settings: SttSettings, audio: np.ndarray, rescore: bool = True
) -> Choice:
    """The spoken language of 16 kHz float32 ``audio`` for a multilingual model; with
    ``rescore`` False (live partials, which must be quick), Whisper's guess stands."""
    speech = speech_window(settings, audio)
    encoded = encode(model, speech)
    ranked = detect(model, encoded)
    guess, probability = ranked[0]
    if not rescore or len(speech) < MIN_RESCORE_SAMPLES:
        return Choice(guess, probability, False, guess)
    language, rescored = decide(
        ranked,
        functools.cache(lambda code: decode(model, encoded, code)),
        candidates(model, settings),
        settings.language_confidence,
    )
    return Choice(language, dict(ranked).get(language, 0.0), rescored, guess)
