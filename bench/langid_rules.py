"""Spoken-language rules evaluated on measured features (``bench.langid_features``)."""

import math
from collections.abc import Callable

from bench.langid_features import ClipFeatures
from services.stt import langid

Rule = Callable[[ClipFeatures], str]


def reference(f: ClipFeatures) -> str:
    """Plain ``WhisperModel.transcribe``'s detection (when measured without it, the product's
    detection pass, which sees the same VAD-trimmed first 30 s)."""
    return (f.reference or f.shifted[0])[0][0]


OLD_CONFIDENCE = 0.7
OLD_CANDIDATES = ("en", "es", "pt", "de", "fr")
NEW_CANDIDATES = (*OLD_CANDIDATES, "it")


def old(f: ClipFeatures) -> str:
    """The rule before this work: Whisper's guess on the VAD-trimmed window; under 0.7, the
    top 3 guesses and the expected languages re-scored by a greedy decode's mean log-prob."""
    guess, p = f.shifted[0][0]
    if p >= OLD_CONFIDENCE:
        return guess
    options = dict.fromkeys([c for c, _p in f.shifted[0][:3]] + list(OLD_CANDIDATES))
    return max(options, key=lambda c: f.decodes[c].logprob)


def previous(f: ClipFeatures) -> str:
    """The rule before the English and near-tie guards: under 0.7, the heard decode of the
    expected languages with the highest mean log-prob."""
    guess, p = f.shifted[0][0]
    if p >= OLD_CONFIDENCE:
        return guess
    pool = [c for c in NEW_CANDIDATES if decoded(f, c).heard] or list(NEW_CANDIDATES)
    return max(pool, key=lambda c: decoded(f, c).logprob)


def decoded(f: ClipFeatures, code: str) -> langid.Decoded:
    """A measured decode as the product sees it."""
    d = f.decodes[code]
    ended = d.ended if d.ended is not None else d.tokens < langid.token_limit()
    return langid.Decoded(d.logprob, d.text, ended)


def chosen(
    candidates: tuple[str, ...] = NEW_CANDIDATES,
    confidence: float = OLD_CONFIDENCE,
    weight: float = 0.0,
    heard_only: bool = True,
) -> Rule:
    """``services.stt.langid.decide`` (the product's rule: weight 0, heard decodes only), or
    a variant: ``weight`` × log detection probability added to a decode's score; every
    decode competing."""

    def rule(f: ClipFeatures) -> str:
        probs = dict(f.shifted[0])

        def scored(code: str) -> langid.Decoded:
            d = decoded(f, code)
            prior = weight * math.log(max(probs.get(code, 0.0), 1e-6))
            if not heard_only:  # no text and ended: every decode counts as heard
                return langid.Decoded(d.logprob + prior, "", True)
            return langid.Decoded(d.logprob + prior, d.text, d.ended)

        return langid.decide(f.shifted[0], scored, candidates, confidence)[0]

    return rule


RULES: dict[str, Rule] = {
    "reference": reference, "old": old, "previous": previous, "new": chosen(),
}  # fmt: skip
# The variants the rule was chosen among, on the corpus's dev half.
VARIANTS: dict[str, Rule] = {
    f"w{weight:g}-c{confidence:g}-{len(cands)}{'-heard' * heard}": chosen(
        cands, confidence, weight, heard
    )
    for weight in (0.0, 0.25, 0.5)
    for confidence in (0.5, 0.7, 0.9)
    for cands in (OLD_CANDIDATES, NEW_CANDIDATES)
    for heard in (False, True)
}


def _cell(rows: list[ClipFeatures], rule: Rule) -> str:
    right = sum(rule(f) == f.language for f in rows)
    return f"{right}/{len(rows)}"


def table(features: list[ClipFeatures], rules: dict[str, Rule], languages: tuple[str, ...]) -> str:
    """A markdown table: per language, right/clips for each rule, held-out half then all."""
    head = ["language", *[f"{n} (held-out)" for n in rules], *[f"{n} (all)" for n in rules]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups = [(code, [f for f in features if f.language == code]) for code in languages]
    groups.append(("all", features))
    for code, rows in groups:
        held = [f for f in rows if f.held_out]
        cells = [_cell(held, r) for r in rules.values()] + [_cell(rows, r) for r in rules.values()]
        lines.append("| " + " | ".join([code, *cells]) + " |")
    return "\n".join(lines)
