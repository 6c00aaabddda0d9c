"""What the live transcriber takes for the end of a sentence (text and the model's
probability of its mark; no model runs here)."""

import pytest

from services.gateway.live.engine.transcriber import complete, ends_sentence
from shared.messages import Transcript


@pytest.mark.parametrize("text", ["The air is pure.", "Hello?", "Ask not!", 'He said "go."', ""])
def test_a_complete_sentence_ends(text: str) -> None:
    assert ends_sentence(text)


@pytest.mark.parametrize(
    "text", ["Drop the two when you", "At that high level,", "The pencils have all...", "So…"]
)
def test_a_phrase_that_goes_on_does_not(text: str) -> None:
    assert not ends_sentence(text)


def said(text: str, p: float | None) -> Transcript:
    return Transcript(text=text, language="en", duration_s=1.0, sentence_end_p=p)


def test_a_mark_the_model_is_unsure_of_does_not_end_a_sentence() -> None:
    assert complete(said("A thin stripe runs down the middle.", 0.95), sure=0.9)
    assert not complete(said("A thin stripe.", 0.6), sure=0.9)
    assert complete(said("A thin stripe.", 0.6), sure=0.0)  # the setting turns it off


def test_without_the_models_word_the_text_decides() -> None:
    assert complete(said("A thin stripe.", None), sure=0.9)
    assert not complete(said("A thin stripe runs", 0.99), sure=0.9)
    assert complete(said("", 0.1), sure=0.9)  # nothing said: nothing to keep open for
