"""Whether a live utterance's text ends a sentence, as the model hears it: the probability of
a sentence mark right after its words, read from the decoder over the window just decoded.

Whisper ends a fragment followed by silence with a mark ("A thin stripe."), so the text
alone cannot tell a speaker's hesitation from a sentence's end; the mark's probability
mostly can (``docs/BENCHMARKS.md``, "Live accuracy").
"""

import numpy as np

from services.stt.model import SttModel
from shared.textnorm import SENTENCE_MARKS, sentence_body

MAX_TOKENS = 220  # Whisper's decoder holds 448 positions; a live utterance needs far fewer


def _ids(model: SttModel, text: str) -> list[int]:
    return list(model.whisper.hf_tokenizer.encode(text, add_special_tokens=False).ids)


def mark_probability(model: SttModel, text: str, language: str) -> float | None:
    """P(". ", "?" or "!" next | the last call's first window, ``text`` without its mark).
    None when there is nothing to ask about (no call, no words, too long a text)."""
    encoded = model.whisper.first_window()
    body = sentence_body(text)
    if encoded is None or not body:
        return None
    tokenizer = model.whisper.hf_tokenizer
    specials = ["<|startoftranscript|>"]
    if model.multilingual:
        specials += [f"<|{language}|>", "<|transcribe|>"]
    prefix = [tokenizer.token_to_id(t) for t in [*specials, "<|notimestamps|>"]]
    words = _ids(model, " " + body)
    if len(words) > MAX_TOKENS or None in prefix:
        return None
    marks = sorted({ids[0] for m in SENTENCE_MARKS if len(ids := _ids(model, m)) == 1})
    # CTranslate2 forces the prompt's tokens after the task ones and reports the log
    # probabilities of every step; it needs twice the forced length to reach the next one.
    result = model.whisper.model.generate(  # type: ignore[attr-defined]
        encoded,
        [prefix + words],
        max_length=2 * len(words) + 2,
        return_logits_vocab=True,
        beam_size=1,
        suppress_blank=False,
        suppress_tokens=[],
    )[0]
    steps = result.logits[0]
    if len(steps) <= len(words):
        return None
    logits = np.asarray(steps[len(words)], dtype=np.float64)
    probs = np.exp(logits - logits.max())
    return float(probs[marks].sum() / probs.sum())
