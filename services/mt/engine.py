"""What a translation engine is to the rest of the service: the interface the handler
calls and the error a loader raises. No ML library here; each engine lives in its own
module beside this one (``bergamot.py``, ``ct2.py``) and ``model.py`` picks one.
"""

from collections.abc import Sequence
from typing import Protocol


class ModelError(ValueError):
    """The configured model cannot be loaded: the worker refuses to start with this message."""


class MtModel(Protocol):
    """A loaded engine. Calls block and are safe from several threads at once."""

    @property
    def pairs(self) -> list[str]:
        """The pairs served, e.g. ``["en-pt"]``; one stream and heartbeat each."""
        ...

    def name(self, pair: str) -> str:
        """The model name a pair advertises, e.g. ``bergamot:en-pt``."""
        ...

    def translate(self, text: str, pair: str) -> str:
        """Translate one sentence."""
        ...

    def translate_batch(self, texts: Sequence[str], pair: str) -> list[str]:
        """Translate several sentences at once: one output per input, in the same order."""
        ...
