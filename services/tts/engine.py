"""What every TTS engine offers the handler, and the sentence splitting engines share.

The handler needs a voice name, the languages it speaks, its sample rate, how many chunks a
text will become (so the last one can be marked without holding it back), and a lazy
generator of 16-bit mono PCM, one chunk per sentence, so the first sentence can be sent
while the rest are still being synthesised.
"""

from collections.abc import Iterator
from typing import Protocol

import sentencex


class TtsEngine(Protocol):
    """One loaded voice of one engine (Piper, espeak-ng or Coqui)."""

    @property
    def name(self) -> str:
        """The voice name this engine is served as (its stream is ``pp:jobs:tts:<name>``)."""
        ...

    @property
    def engine(self) -> str:
        """Which engine speaks: ``piper``, ``espeak`` or ``coqui`` (advertised to the gateway)."""
        ...

    @property
    def languages(self) -> list[str]:
        """ISO codes this voice speaks."""
        ...

    @property
    def sample_rate_hz(self) -> int:
        """The rate of every chunk ``synthesize`` yields."""
        ...

    def count_sentences(self, text: str) -> int:
        """How many chunks ``synthesize`` will yield for ``text``; cheap, no audio made."""
        ...

    def synthesize(self, text: str, speed: float) -> Iterator[bytes]:
        """16-bit mono PCM at ``sample_rate_hz``, one chunk per sentence, lazily."""
        ...


def split_sentences(text: str, language: str) -> list[str]:
    """The speakable sentences of ``text``, for engines that do not split text themselves.

    sentencex knows the abbreviations of ~300 languages ("Dr.", "Sr.", "p. ex."), which a
    regex on full stops does not. Pieces with no letter or digit ("...", "—") are dropped:
    an engine would only make silence of them.
    """
    pieces = (piece.strip() for piece in sentencex.segment(language, text))
    return [piece for piece in pieces if any(char.isalnum() for char in piece)]
