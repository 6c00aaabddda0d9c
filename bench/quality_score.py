"""Scoring a transcript for the quality harness: word errors (jiwer, on ``shared.textnorm``
words), and the reference words lost at the start and at the end of a clip."""

from dataclasses import dataclass

import jiwer

from shared.textnorm import normalize


@dataclass(frozen=True)
class Score:
    words: int  # reference words
    errors: int  # substitutions + deletions + insertions
    start_lost: int  # reference words deleted before the first one heard
    end_lost: int  # reference words deleted after the last one heard

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else float(self.errors > 0)


def score(reference: str, hypothesis: str) -> Score:
    """``hypothesis`` against ``reference``, both normalised the same way."""
    ref, hyp = " ".join(normalize(reference)), " ".join(normalize(hypothesis))
    if not ref:
        return Score(0, len(hyp.split()), 0, 0)
    out = jiwer.process_words(ref, hyp)
    chunks = [c for c in out.alignments[0] if c.type != "insert"]
    errors = out.substitutions + out.deletions + out.insertions
    first, last = chunks[0], chunks[-1]
    start = first.ref_end_idx - first.ref_start_idx if first.type == "delete" else 0
    end = last.ref_end_idx - last.ref_start_idx if last.type == "delete" else 0
    if len(chunks) == 1 and first.type == "delete":
        end = 0  # nothing heard at all: count the loss once, at the start
    return Score(len(ref.split()), errors, start, end)


def total(scores: list[Score]) -> Score:
    """Pooled over clips: a corpus WER weights each clip by its reference words."""
    return Score(
        sum(s.words for s in scores),
        sum(s.errors for s in scores),
        sum(s.start_lost for s in scores),
        sum(s.end_lost for s in scores),
    )
