"""What each spoken-language rule looks at, measured once per clip of ``bench.langid_corpus``:
the plain in-process detection (the reference), the product's detection pass, and greedy
decodes in each candidate language with their log-probability and text. Rules are then
compared on these figures (``bench.langid_rules``) without running the model again; the
product's own functions measure them, so a rule judged here is the rule that runs.
"""

from dataclasses import asdict, dataclass, field

from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer

from bench.langid_corpus import LangClip
from services.stt import langid
from services.stt.model import SttModel
from services.stt.settings import SttSettings

OLD_CONFIDENCE = 0.7
DECODED = ("en", "es", "pt", "de", "fr", "it")  # every language a compared rule may decode
TOP = 5  # detection probabilities kept per clip, besides those of the decoded languages


@dataclass
class Decode:
    logprob: float  # mean per token
    tokens: int  # how many it took (the token limit when it ran out)
    text: str
    ended: bool | None = None  # before its token limit (None: judge by ``tokens``)


@dataclass
class ClipFeatures:
    name: str
    language: str
    held_out: bool
    how: str
    reference: list[tuple[str, float]]  # plain WhisperModel.transcribe's detection
    shifted: list[list[tuple[str, float]]]  # the product's detection pass (one window)
    decodes: dict[str, Decode] = field(default_factory=dict)


def _top(probs: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """The first ``TOP`` guesses, then every language decoded, in rank order."""
    return [(c, round(float(p), 6)) for i, (c, p) in enumerate(probs) if i < TOP or c in DECODED]


def decode(model: SttModel, encoded: object, language: str) -> Decode:
    """``langid.decode``'s score and text, and how many tokens it took."""
    result = langid.decode(model, encoded, language)
    tokenizer = Tokenizer(model.whisper.hf_tokenizer, True, "transcribe", language)
    tokens = len(tokenizer.encode(" " + result.text)) if result.text else 0
    tokens = tokens if result.ended else langid.token_limit()
    return Decode(round(result.logprob, 4), tokens, result.text, result.ended)


def measure(
    plain: WhisperModel | None, model: SttModel, settings: SttSettings, clip: LangClip
) -> ClipFeatures:
    """Every figure the rules use, for one clip."""
    reference: list[tuple[str, float]] = []
    if plain is not None:
        _segments, info = plain.transcribe(clip.audio, beam_size=1, vad_filter=True)
        reference = _top(info.all_language_probs or [])
    encoded = langid.encode(model, langid.speech_window(settings, clip.audio))
    ranked = langid.detect(model, encoded)
    features = ClipFeatures(
        clip.name, clip.language, clip.held_out, clip.how, reference, [_top(ranked)]
    )
    guess, probability = ranked[0]
    # The old rule's candidates: its top 3 guesses, when it was unsure.
    guesses = {c for c, _p in ranked[:3]} if probability < OLD_CONFIDENCE else {guess}
    for code in sorted(guesses | set(DECODED)):
        features.decodes[code] = decode(model, encoded, code)
    return features


def as_json(features: ClipFeatures) -> dict[str, object]:
    return asdict(features)


def from_json(data: dict[str, object]) -> ClipFeatures:
    decodes = {k: Decode(**v) for k, v in data.pop("decodes").items()}  # type: ignore[attr-defined]
    raw = ClipFeatures(**data)  # type: ignore[arg-type]
    raw.reference = [tuple(x) for x in raw.reference]  # type: ignore[misc]
    raw.shifted = [[tuple(x) for x in window] for window in raw.shifted]  # type: ignore[misc]
    raw.decodes = decodes
    return raw
