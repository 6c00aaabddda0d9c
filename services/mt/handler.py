"""Turning one translation job into one translation. No Redis, no environment.

Text is translated sentence by sentence: Bergamot's tiny models are trained on single
sentences and silently drop the end of long inputs (measured: of 18 sentences sent as one
text, 6 came back), while a sentence at a time loses nothing and costs about the same. The
sentences of one job go to the engine in one batch call, which CTranslate2 decodes together.
"""

import re
import time
from collections.abc import Iterator
from itertools import islice

from services.mt.model import MtModel
from services.mt.settings import MtSettings
from shared.errors import text_problem
from shared.messages import Envelope, TranslateRequest, Translation
from shared.worker import Rejected

# Line breaks (with the blanks around them) are kept as they are, so paragraphs survive.
_LINE_BREAK = re.compile(r"(\s*\n\s*)")
# A sentence ends at . ! ? or … (maybe inside a closing quote or bracket), then space and
# what looks like the start of a new sentence.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+(?=[\"'“‘(\[¿¡]?[A-ZÀ-Ý0-9])")
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


def split_sentences(line: str, max_words: int) -> list[str]:
    """The sentences (or sentence pieces) of one line of text, in order."""
    parts = [s for s in _SENTENCE_END.split(line.strip()) if s]
    return [piece for sentence in parts for piece in pieces(sentence, max_words)]


def translate_text(model: MtModel, settings: MtSettings, text: str, pair: str) -> str:
    """Translate text of any length a sentence at a time, in one batch, keeping line breaks."""
    chunks = _LINE_BREAK.split(text.strip())
    # A chunk that is only a line break (or nothing, between two) has no sentences.
    lines = [split_sentences(c, settings.max_sentence_words) if c.strip() else [] for c in chunks]
    done = iter(model.translate_batch([s for line in lines for s in line], pair))
    return "".join(
        " ".join(islice(done, len(line))) if line else chunk
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
