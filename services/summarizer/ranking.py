"""Extractive summarisation with numpy only: sentences ranked by centrality (LexRank).

Each sentence becomes a TF-IDF vector (sentences are the documents); a sentence that is
similar to many others, themselves central, states what the text is about. PageRank over
the cosine-similarity graph gives that score. The summary is the top sentences, skipping
near-duplicates of ones already taken (transcripts repeat themselves), in their original
order. Language-agnostic: words found in every sentence get no weight, so no stop-word
lists are needed.
"""

import math
import re
from collections import Counter

import numpy as np

# A sentence ends at . ! ? or … (maybe inside a closing quote or bracket) followed by space,
# unless the next word starts in lower case ("e.g. the"); CJK full stops need no space.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+(?![a-zà-ÿ])|(?<=[。！？])\s*")
_WORD = re.compile(r"\w+")
MAX_VOCAB = 4_096  # bounds the matrix for hour-long transcripts (n x 4096 float32)
MIN_WORDS = 4  # shorter "sentences" ("Okay.", "Right, so.") are taken only if nothing else is
REDUNDANCY_MAX = 0.7  # cosine similarity above which a candidate repeats a chosen sentence
DAMPING = 0.85


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` in order (line breaks end sentences too)."""
    return [
        sentence.strip()
        for line in text.splitlines()
        for sentence in _SENTENCE_END.split(line)
        if sentence.strip()
    ]


def _tokens(sentence: str) -> list[str]:
    return [w for w in _WORD.findall(sentence.lower()) if not w.isdigit()]


def tfidf(token_lists: list[list[str]]) -> np.ndarray:
    """Unit-length TF-IDF rows, one per sentence (sublinear term frequency)."""
    n = len(token_lists)
    df = Counter(t for tokens in token_lists for t in set(tokens))
    # Terms shared by several sentences first: only they make sentences similar.
    terms = [t for t, count in df.most_common() if count < n][:MAX_VOCAB]
    index = {t: j for j, t in enumerate(terms)}
    matrix = np.zeros((n, len(terms)), dtype=np.float32)
    for i, tokens in enumerate(token_lists):
        for term, count in Counter(tokens).items():
            if (j := index.get(term)) is not None:
                matrix[i, j] = 1.0 + math.log(count)
    matrix *= np.log(n / np.array([df[t] for t in terms], dtype=np.float32))
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def centrality(similarity: np.ndarray, iterations: int = 100, tol: float = 1e-7) -> np.ndarray:
    """PageRank scores over a weighted similarity graph (continuous LexRank)."""
    n = len(similarity)
    weights = similarity.astype(np.float64)
    np.fill_diagonal(weights, 0.0)
    totals = weights.sum(axis=1, keepdims=True)
    # A sentence sharing nothing with the others links to all alike (no rank sink).
    transition = np.where(totals > 0, weights / np.where(totals > 0, totals, 1.0), 1.0 / n)
    scores = np.full(n, 1.0 / n)
    for _ in range(iterations):
        updated = (1 - DAMPING) / n + DAMPING * transition.T @ scores
        if np.abs(updated - scores).sum() < tol:
            return updated
        scores = updated
    return scores


def select(
    sentences: list[str], count: int | None = None, max_chars: int | None = None
) -> list[int]:
    """Indices of the best sentences, in text order: at most ``count`` of them and at most
    ``max_chars`` characters (at least one sentence whatever the limits)."""
    count = len(sentences) if count is None else count
    if len(sentences) <= count and max_chars is None:
        return list(range(len(sentences)))
    tokens = [_tokens(s) for s in sentences]
    vectors = tfidf(tokens)
    similarity = vectors @ vectors.T
    scores = centrality(similarity)
    long_enough = [len(t) >= MIN_WORDS for t in tokens]
    # Long-enough sentences first, each group by score (stable: ties keep text order).
    order = sorted(range(len(sentences)), key=lambda i: (not long_enough[i], -scores[i]))
    chosen: list[int] = []
    used_chars = 0
    for i in order:
        if len(chosen) >= count:
            break
        if chosen and max_chars is not None and used_chars + len(sentences[i]) > max_chars:
            continue
        if chosen and similarity[i, chosen].max() > REDUNDANCY_MAX:
            continue
        chosen.append(i)
        used_chars += len(sentences[i]) + 1
    return sorted(chosen)


def summarize(sentences: list[str], count: int) -> str:
    """The ``count`` most central sentences, joined in their original order."""
    return " ".join(sentences[i] for i in select(sentences, count))
