"""Turning one translation job into one translation. No Redis, no environment.

Text is translated sentence by sentence: Bergamot's tiny models are trained on single
sentences and silently drop the end of long inputs (measured: of 18 sentences sent as one
text, 6 came back), while a sentence at a time loses nothing and costs about the same. The
sentences of one job go to the engine in one batch call, which CTranslate2 decodes together.
A piece is bounded in characters too, since a model's time grows faster than its input (a
run of punctuation with no space is one "word" of any length); a piece with no letter or
digit in it is kept as it is, as a model would only copy or drop it.
"""

import re
import time
from collections.abc import Iterator

from services.mt.model import MtModel
from services.mt.settings import MtSettings
from shared.errors import text_problem
from shared.messages import Envelope, TranslateRequest, Translation
from shared.textsplit import LINE_BREAK, SENTENCE_END, cut_at_spaces
from shared.worker import Rejected

_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


def pieces(sentence: str, max_words: int) -> list[str]:
    """Cut a sentence longer than ``max_words`` at clause breaks, or else every ``max_words``."""
    if len(sentence.split()) <= max_words:
        return [sentence]
    out: list[str] = []
    current: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        words = clause.split()
        if current and len(current) + len(words) > max_words:
            out.append(" ".join(current))
            current = []
        current += words
        while len(current) > max_words:
            out.append(" ".join(current[:max_words]))
            current = current[max_words:]
    if current:
        out.append(" ".join(current))
    return out


def split_sentences(line: str, max_words: int, max_chars: int) -> list[str]:
    """The sentences (or sentence pieces) of one line of text, in order, none longer than
    ``max_words`` words or ``max_chars`` characters."""
    parts = [s for s in SENTENCE_END.split(line.strip()) if s]
    return [
        bounded
        for sentence in parts
        for piece in pieces(sentence, max_words)
        for bounded in (cut_at_spaces(piece, max_chars) if len(piece) > max_chars else [piece])
    ]


def _wordy(piece: str) -> bool:
    return any(char.isalnum() for char in piece)


def translate_text(model: MtModel, settings: MtSettings, text: str, pair: str) -> str:
    """Translate text of any length a sentence at a time, in one batch, keeping line breaks."""
    chunks = LINE_BREAK.split(text.strip())
    # A chunk that is only a line break (or nothing, between two) has no sentences.
    lines = [
        split_sentences(c, settings.max_sentence_words, settings.max_sentence_chars)
        if c.strip()
        else []
        for c in chunks
    ]
    flat = [s for line in lines for s in line]
    done = iter(model.translate_batch([s for s in flat if _wordy(s)], pair))
    out = iter([next(done) if _wordy(s) else s for s in flat])
    return "".join(
        " ".join(next(out) for _ in line) if line else chunk
        for chunk, line in zip(chunks, lines, strict=True)
    )


def translate(model: MtModel, settings: MtSettings, request: TranslateRequest) -> Translation:
    """Translate one request with the pair it names."""
    pair = f"{request.source}-{request.target}"
    if pair not in model.pairs:
        raise Rejected(
            "unsupported_pair", f"pair {pair!r} is not served; served pairs: {model.pairs}"
        )
    if not request.text.strip():
        raise Rejected("empty_text", "nothing to translate")
    if problem := text_problem(request.text):
        raise Rejected("invalid_text", problem)
    started = time.perf_counter()
    return Translation(
        text=translate_text(model, settings, request.text, pair),
        source=request.source,
        target=request.target,
        model=model.name(pair),
        processing_s=time.perf_counter() - started,
    )


def handle(model: MtModel, settings: MtSettings, job: Envelope) -> Iterator[Translation]:
    """The worker-loop handler: one translation per job."""
    if not isinstance(job.payload, TranslateRequest):
        raise Rejected("wrong_kind", f"mt cannot handle {job.kind!r}")
    yield translate(model, settings, job.payload)
