"""Utterance segmentation on scripted speech probabilities (no model, no audio)."""

import numpy as np
import pytest

from services.gateway.live.engine.segmenter import Segmenter, SegmenterOptions
from shared.silero import RATE_HZ, WINDOW

WINDOW_S = WINDOW / RATE_HZ


def script(*parts: tuple[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Windows and speech probabilities for ("speech"|"pause", seconds) parts."""
    probs = np.concatenate(
        [np.full(round(s / WINDOW_S), 0.9 if kind == "speech" else 0.05) for kind, s in parts]
    )
    return np.zeros((len(probs), WINDOW), dtype=np.float32), probs


def utterances(options: SegmenterOptions, *parts: tuple[str, float]) -> list[float]:
    """The lengths (s) of the utterances the segmenter cuts, the open one flushed last."""
    seg = Segmenter(options)
    done, _started = seg.push(*script(*parts))
    return [round(len(u.audio) / RATE_HZ, 1) for u in [*done, *seg.flush()]]


def test_a_sentence_pause_ends_a_long_utterance_but_not_a_short_one() -> None:
    options = SegmenterOptions(min_silence_ms=500, soft_utterance_s=4.0, short_silence_ms=250)
    talk = [("speech", 2.0), ("pause", 0.35), ("speech", 3.0), ("pause", 0.35), ("speech", 2.0)]
    # 0.35 s after 2 s of speech is a breath; after 5 s, the end of a sentence.
    lengths = utterances(options, *talk, ("pause", 1.0))
    assert len(lengths) == 2, lengths
    assert 5.3 <= lengths[0] <= 5.9 and 2.0 <= lengths[1] <= 2.6, lengths


def test_short_pauses_alone_never_end_an_utterance_below_the_soft_length() -> None:
    options = SegmenterOptions(min_silence_ms=500, soft_utterance_s=4.0, short_silence_ms=250)
    talk = [("speech", 1.0), ("pause", 0.35), ("speech", 1.0), ("pause", 0.35), ("speech", 1.0)]
    assert len(utterances(options, *talk, ("pause", 1.0))) == 1


def test_without_a_soft_length_only_the_long_pause_counts() -> None:
    options = SegmenterOptions(min_silence_ms=500, soft_utterance_s=29.0, short_silence_ms=250)
    talk = [("speech", 5.0), ("pause", 0.35), ("speech", 2.0), ("pause", 0.6), ("speech", 1.0)]
    lengths = utterances(options, *talk, ("pause", 1.0))
    assert len(lengths) == 2 and lengths[0] >= 7.3, lengths


def test_a_pause_that_ends_the_utterance_matches_the_tentative_cut_made_in_it() -> None:
    options = SegmenterOptions(min_silence_ms=500, soft_utterance_s=4.0, short_silence_ms=250)
    seg = Segmenter(options)
    seg.push(*script(("speech", 2.0), ("pause", 0.2)))
    early = seg.tentative()
    assert early is not None and seg.pause_windows >= round(0.2 / WINDOW_S) - 1
    done, _ = seg.push(*script(("pause", 0.5)))
    assert len(done) == 1 and done[0].index == early.index
    assert done[0].speech_windows == early.speech_windows  # the speculation stands


def test_speech_after_the_pause_makes_the_tentative_cut_stale() -> None:
    options = SegmenterOptions(min_silence_ms=500, soft_utterance_s=4.0, short_silence_ms=250)
    seg = Segmenter(options)
    seg.push(*script(("speech", 2.0), ("pause", 0.2)))
    early = seg.tentative()
    assert early is not None
    done, _ = seg.push(*script(("speech", 0.5), ("pause", 0.6)))
    assert len(done) == 1 and done[0].speech_windows > early.speech_windows
    assert len(done[0].audio) > len(early.audio)


def test_nothing_tentative_without_an_open_utterance() -> None:
    seg = Segmenter(SegmenterOptions())
    seg.push(*script(("pause", 1.0)))
    assert seg.tentative() is None and seg.pause_windows == 0


def hesitant(options: SegmenterOptions, complete: bool, *parts: tuple[str, float]) -> list[float]:
    """Like ``utterances``, with the transcriber's verdict on every pause fixed."""
    seg = Segmenter(options, sentence_ended=lambda _index, _windows: complete)
    done, _started = seg.push(*script(*parts))
    return [round(len(u.audio) / RATE_HZ, 1) for u in [*done, *seg.flush()]]


def test_a_pause_inside_a_sentence_does_not_end_the_utterance() -> None:
    options = SegmenterOptions(min_silence_ms=500, long_silence_ms=1_600)
    talk = [("speech", 1.5), ("pause", 1.2), ("speech", 1.5), ("pause", 0.8), ("speech", 1.0)]
    # 1.2 s and 0.8 s are past the usual 0.5 s, but the text so far is not a sentence.
    lengths = hesitant(options, False, *talk, ("pause", 0.3))
    assert len(lengths) == 1 and lengths[0] >= 6.0, lengths
    # The same pauses after whole sentences end them.
    assert len(hesitant(options, True, *talk, ("pause", 0.3))) == 3


def test_a_long_pause_ends_the_utterance_whatever_was_said() -> None:
    options = SegmenterOptions(min_silence_ms=500, long_silence_ms=1_600)
    seg = Segmenter(options, sentence_ended=lambda _index, _windows: False)
    done, _ = seg.push(*script(("speech", 2.0), ("pause", 1.5)))
    assert done == [] and seg.in_speech
    done, _ = seg.push(*script(("pause", 0.2)))
    assert len(done) == 1 and not seg.in_speech
    assert 2.0 <= len(done[0].audio) / RATE_HZ <= 2.4  # the pause is trimmed to the pad


def test_the_short_pause_past_the_soft_length_needs_a_whole_sentence_too() -> None:
    options = SegmenterOptions(soft_utterance_s=4.0, short_silence_ms=250, long_silence_ms=1_600)
    talk = [("speech", 5.0), ("pause", 0.35), ("speech", 2.0)]
    assert len(hesitant(options, False, *talk, ("pause", 0.3))) == 1
    assert len(hesitant(options, True, *talk, ("pause", 0.3))) == 2


def test_the_sentence_question_is_asked_about_the_utterance_as_it_stands() -> None:
    asked: list[tuple[int, int]] = []

    def ended(index: int, windows: int) -> bool:
        asked.append((index, windows))
        return False

    seg = Segmenter(SegmenterOptions(min_silence_ms=500, long_silence_ms=1_600), 3, ended)
    seg.push(*script(("speech", 2.0), ("pause", 0.7)))
    tentative = seg.tentative()
    assert tentative is not None and asked
    # The key a speculation made in this pause carries: its verdict is the one asked for.
    assert set(asked) == {(3, tentative.speech_windows)}


def test_a_sentence_found_after_the_speaker_went_on_is_split_off_at_its_pause() -> None:
    options = SegmenterOptions(soft_utterance_s=4.0, short_silence_ms=250, long_silence_ms=1_600)
    seg = Segmenter(options, sentence_ended=lambda _index, _windows: False)
    seg.push(*script(("speech", 5.0), ("pause", 0.35)))
    spoken = seg.tentative()
    assert spoken is not None
    seg.push(*script(("speech", 1.0)))  # the text of the pause comes back only now
    head = seg.split(spoken.index, spoken.speech_windows)
    assert len(head) == 1 and head[0].index == spoken.index
    assert head[0].speech_windows == spoken.speech_windows  # the speculation stands for it
    assert 5.0 <= len(head[0].audio) / RATE_HZ <= 5.3  # the sentence and a pad of its pause
    seg.push(*script(("speech", 1.0), ("pause", 0.3)))
    rest = seg.flush()
    assert len(rest) == 1 and rest[0].index == spoken.index + 1
    assert rest[0].start_s == pytest.approx(head[0].start_s + len(head[0].audio) / RATE_HZ)
    assert 2.1 <= len(rest[0].audio) / RATE_HZ <= 2.3, len(rest[0].audio) / RATE_HZ


@pytest.mark.parametrize(
    "before_s, pause_s",
    # Too short a pause for a long utterance; for a short one; a short utterance at all.
    [(5.0, 0.15), (2.0, 0.35), (2.0, 0.7)],
)
def test_no_split_at_a_pause_too_short_to_end_a_sentence(before_s: float, pause_s: float) -> None:
    options = SegmenterOptions(min_silence_ms=500, soft_utterance_s=4.0, short_silence_ms=250)
    seg = Segmenter(options, sentence_ended=lambda _index, _windows: False)
    seg.push(*script(("speech", before_s), ("pause", pause_s)))
    spoken = seg.tentative()
    assert spoken is not None
    seg.push(*script(("speech", 1.0)))
    assert seg.split(spoken.index, spoken.speech_windows) == []
    assert len(seg.flush()) == 1


def forced_cut(sentence_at_s: float | None, *parts: tuple[str, float]) -> float:
    """The length (s) of the first utterance of speech that reaches ``max_utterance_s``
    without a pause that ends it; the text says a sentence ends at ``sentence_at_s``."""
    options = SegmenterOptions(
        soft_utterance_s=4.0, short_silence_ms=400, long_silence_ms=1_600, max_utterance_s=18.0
    )

    def ended(_index: int, windows: int) -> bool:
        return sentence_at_s is not None and abs(windows * WINDOW_S - sentence_at_s) < 0.05

    seg = Segmenter(options, sentence_ended=ended)
    done, _started = seg.push(*script(*parts))
    assert done, "the utterance was not cut"
    return len(done[0].audio) / RATE_HZ


LONG_TALK = [
    ("speech", 6.0), ("pause", 0.2), ("speech", 4.0), ("pause", 0.15),
    ("speech", 3.0), ("pause", 0.3), ("speech", 3.0), ("pause", 0.2), ("speech", 3.0),
]  # fmt: skip


def test_an_over_long_utterance_is_cut_where_the_text_ended_a_sentence() -> None:
    # The 0.2 s pause at 6 s is too short to end an utterance, but its text ended a sentence.
    assert 6.0 <= forced_cut(6.0, *LONG_TALK) <= 6.3


def test_without_a_known_sentence_end_the_cut_is_at_the_longest_late_pause() -> None:
    # Not at the first quiet window of the second half (the 0.15 s pause at 10.2 s).
    assert 13.35 <= forced_cut(None, *LONG_TALK) <= 13.7


def test_speech_without_a_pause_is_cut_at_its_quietest_window() -> None:
    probs_cut = forced_cut(None, ("speech", 19.0))
    assert 9.0 <= probs_cut <= 18.0
