"""The quality harness's scoring: word errors and the words lost at a clip's start and end."""

from bench.quality_score import Score, score, total


def test_words_lost_at_the_end_are_counted_apart_from_other_errors() -> None:
    s = score("Most of the time nobody notices. But", "most of the time nobody notices")
    assert (s.words, s.errors, s.start_lost, s.end_lost) == (7, 1, 0, 1)


def test_words_lost_at_the_start_and_a_substitution_inside() -> None:
    s = score("Good morning, everyone. Today we continue.", "everyone today we continued")
    assert (s.errors, s.start_lost, s.end_lost) == (3, 2, 0)


def test_nothing_heard_counts_every_word_once() -> None:
    s = score("a thin stripe", "")
    assert (s.errors, s.start_lost, s.end_lost) == (3, 3, 0)


def test_words_made_up_after_the_end_lose_nothing() -> None:
    s = score("the pencils have all been used", "The pencils have all been used. Thank you.")
    assert (s.errors, s.end_lost) == (2, 0)


def test_a_corpus_wer_weights_clips_by_their_words() -> None:
    pooled = total([Score(10, 1, 0, 0), Score(30, 0, 0, 1)])
    assert pooled.wer == 1 / 40 and pooled.end_lost == 1
