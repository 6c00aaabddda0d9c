"""Whether a live utterance's text ends a sentence, as the model hears it: the probability of
a sentence mark right after its words, read from the decoder over the window just decoded.

Whisper ends a fragment followed by silence with a mark ("A thin stripe."), so the text
alone cannot tell a speaker's hesitation from a sentence's end; the mark's probability
mostly can (``docs/BENCHMARKS.md``, "Live accuracy").
"""

from faster_whisper.tokenizer import Tokenizer

from services.stt.model import SttModel
from shared.textnorm import SENTENCE_MARKS, sentence_body

MAX_TOKENS = 220  # Whisper's decoder holds 448 positions; a live utterance needs far fewer


def mark_probability(model: SttModel, text: str, language: str) -> float | None:
    """P(".", "?" or "!" next | the last call's first window, ``text`` without its mark), as
    Whisper's word-timing alignment reads it: among text tokens only (ending without a mark
    is no choice there). None when there is nothing to ask about (no call, no words, too
    long a text, a language the model lacks)."""
    encoded = model.whisper.first_window()
    body = sentence_body(text)
    if encoded is None or not body or language not in model.languages:
        return None
    # The start sequence faster-whisper's own word-timing alignment uses.
    tokenizer = Tokenizer(model.whisper.hf_tokenizer, model.multilingual, "transcribe", language)
    words = tokenizer.encode(" " + body)
    if len(words) > MAX_TOKENS:
        return None
    marks = sorted({ids[0] for m in SENTENCE_MARKS if len(ids := tokenizer.encode(m)) == 1})
    # The word-timing alignment reads every text token's probability in one parallel pass
    # (a forced decode takes a step per token): one pass per mark, on any device.
    frames = 2 * encoded.shape[1]  # type: ignore[attr-defined]  # the encoder halves mel frames
    align = model.whisper.model.align  # type: ignore[attr-defined]
    start = tokenizer.sot_sequence
    rows = [align(encoded, start, [[*words, m]], [frames])[0] for m in marks]
    return float(sum(row.text_token_probs[-1] for row in rows))
