"""Cutting text into bounded pieces (MT jobs in the gateway, model inputs in the worker)."""

import pytest

from shared.textsplit import bounded_chunks, cut_at_spaces


def test_a_short_text_is_one_chunk() -> None:
    assert bounded_chunks("  Good morning.  ", 100) == [("Good morning.", "")]


def test_cuts_prefer_line_breaks_then_sentence_ends_then_spaces() -> None:
    text = "One two. Three four.\n\nFive six seven eight nine ten eleven"
    assert bounded_chunks(text, 25) == [
        ("One two. Three four.", "\n\n"),
        ("Five six seven eight nine", " "),
        ("ten eleven", ""),
    ]
    assert bounded_chunks("Aa bb. Cc dd ee. Ff", 17) == [("Aa bb. Cc dd ee.", " "), ("Ff", "")]


@pytest.mark.parametrize("text", ["." * 1_000, "x" * 999 + " y", "a.\n" * 400, "word " * 300])
def test_chunks_are_bounded_and_give_the_text_back(text: str) -> None:
    chunks = bounded_chunks(text, 100)
    assert all(0 < len(chunk) <= 100 for chunk, _sep in chunks)
    rejoined = "".join(chunk + sep for chunk, sep in chunks)
    assert rejoined == text.strip()


def test_a_word_longer_than_the_bound_is_cut_every_bound() -> None:
    assert cut_at_spaces("ab " + "x" * 7 + " cd", 3) == ["ab", "xxx", "xxx", "x", "cd"]
