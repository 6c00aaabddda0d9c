"""Whether a live utterance's text ends a sentence, as the model hears it: the probability of
a sentence mark right after its words, read from the decoder over the window just decoded.

Whisper ends a fragment followed by silence with a mark ("A thin stripe."), so the text
alone cannot tell a speaker's hesitation from a sentence's end; the mark's probability
mostly can (``docs/BENCHMARKS.md``, "Live accuracy").
"""

from services.stt.model import SttModel
from shared.textnorm import SENTENCE_MARKS, sentence_body

MAX_TOKENS = 220  # Whisper's decoder holds 448 positions; a live utterance needs far fewer


def _ids(model: SttModel, text: str) -> list[int]:
    return list(model.whisper.hf_tokenizer.encode(text, add_special_tokens=False).ids)


def mark_probability(model: SttModel, text: str, language: str) -> float | None:
    """P(".", "?" or "!" next | the last call's first window, ``text`` without its mark), as
    Whisper's word-timing alignment reads it: among text tokens only (ending without a mark
    is no choice there). None when there is nothing to ask about (no call, no words, too
    long a text)."""
    encoded = model.whisper.first_window()
    body = sentence_body(text)
    if encoded is None or not body:
        return None
    tokenizer = model.whisper.hf_tokenizer
    specials = ["<|startoftranscript|>"]
    if model.multilingual:
        specials += [f"<|{language}|>", "<|transcribe|>"]
    start = [tokenizer.token_to_id(t) for t in specials]
    words = _ids(model, " " + body)
    if len(words) > MAX_TOKENS or None in start:
        return None
    marks = sorted({ids[0] for m in SENTENCE_MARKS if len(ids := _ids(model, m)) == 1})
    # The word-timing alignment reads every text token's probability in one parallel pass
    # (a forced decode takes a step per token): one pass per mark, on any device.
    frames = 2 * encoded.shape[1]  # type: ignore[attr-defined]  # the encoder halves mel frames
    align = model.whisper.model.align  # type: ignore[attr-defined]
    rows = [align(encoded, start, [[*words, mark]], [frames])[0] for mark in marks]
    return float(sum(row.text_token_probs[-1] for row in rows))
