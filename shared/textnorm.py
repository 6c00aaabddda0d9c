"""Text normalisation and word error rate, for tests, benchmarks and partial agreement, and
what ends a sentence (for the STT worker's sentence-end probability and the gateway's live
segmentation alike)."""

import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s']+")
SENTENCE_MARKS = (".", "?", "!")
CLOSING = "\"')]}»”’"  # closing quotes and brackets after a sentence's mark


def without_closing(text: str) -> str:
    """``text`` without trailing space and closing quotes or brackets."""
    return text.rstrip().rstrip(CLOSING)


def sentence_body(text: str) -> str:
    """``text`` without its final marks ("...", "…" included) and what closes them."""
    return without_closing(text).rstrip("".join(SENTENCE_MARKS) + "…").strip()


def normalize(text: str) -> list[str]:
    """Lower-case words without punctuation or accents-as-separate-marks."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    return _PUNCT.sub(" ", text).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance divided by the reference length."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return float(bool(hyp))
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / len(ref)
