"""What the live transcriber takes for the end of a sentence (pure text, no model)."""

import pytest

from services.gateway.live.engine.transcriber import ends_sentence


@pytest.mark.parametrize("text", ["The air is pure.", "Hello?", "Ask not!", 'He said "go."', ""])
def test_a_complete_sentence_ends(text: str) -> None:
    assert ends_sentence(text)


@pytest.mark.parametrize(
    "text", ["Drop the two when you", "At that high level,", "The pencils have all...", "So…"]
)
def test_a_phrase_that_goes_on_does_not(text: str) -> None:
    assert not ends_sentence(text)
