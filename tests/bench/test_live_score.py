"""The live benchmark's figures on hand-made traces: word matching, lags, finals, WER."""

import pytest

from bench.live_clients import _LiveState
from bench.live_clip import Offline, SpokenWord, Timeline
from bench.live_score import Trace, matched, score, utterances

CHUNK_S = 0.1
T0 = 1_000.0
# Two utterances: "the cat sat" (0.0-0.9 s), pause, "the dog ran" (1.5-2.4 s).
WORDS = [
    SpokenWord("the", 0.0, 0.3),
    SpokenWord("cat", 0.3, 0.6),
    SpokenWord("sat", 0.6, 0.9),
    SpokenWord("the", 1.5, 1.8),
    SpokenWord("dog", 1.8, 2.1),
    SpokenWord("ran", 2.1, 2.4),
]
OFFLINE = Offline("the cat sat the dog ran", WORDS, 0.1, 0.0)
REFERENCE = "The cat sat. The dog ran."


def timeline() -> Timeline:
    """25 chunks of 100 ms, chunk i sent at T0 + (i + 1) * 0.1 (as ``paced`` does)."""
    return Timeline([T0 + (i + 1) * CHUNK_S for i in range(25)], CHUNK_S)


def test_a_word_is_heard_when_the_chunk_with_its_last_sample_is_sent() -> None:
    line = timeline()
    assert line.heard_at(0.3) == pytest.approx(T0 + 0.3)  # samples up to 0.3 s: chunk 2
    assert line.heard_at(0.31) == pytest.approx(T0 + 0.4)
    assert line.started_at(0.3) == pytest.approx(T0 + 0.4)  # the sample at 0.3 s: chunk 3
    assert line.end == pytest.approx(T0 + 2.5)


def test_matching_keeps_order_and_skips_errors() -> None:
    assert matched(["the", "cat", "sat"], ["the", "hat", "sat"]) == {0, 2}
    assert matched(["a", "b"], []) == set()


def test_utterances_split_at_pauses() -> None:
    assert utterances(WORDS) == [[0, 1, 2], [3, 4, 5]]


def test_lags_come_from_the_first_time_each_word_is_shown() -> None:
    trace = Trace("x", timeline())
    trace.show(T0 + 0.8, "the cat")  # partial
    trace.show(T0 + 1.4, "The cat sat.")  # final of utterance 1
    trace.finals.append((T0 + 1.4, "The cat sat."))
    # "the" of utterance 2 is not begun at 1.5 s: the first "the" cannot stand for it.
    trace.show(T0 + 2.0, "The cat sat. the")
    trace.show(T0 + 3.0, "The cat sat. The dog ran.")
    trace.finals.append((T0 + 3.0, "The dog ran."))
    trace.completed = True
    s = score(trace, OFFLINE, REFERENCE)
    heard = [0.3, 0.6, 0.9, 1.8, 2.1, 2.4]
    shown = [0.8, 0.8, 1.4, 2.0, 3.0, 3.0]
    assert s.word_lag_s == pytest.approx([b - a for a, b in zip(heard, shown, strict=True)])
    assert s.words_missed == 0
    assert s.onset_lag_s == pytest.approx([0.8 - 0.1, 2.0 - 1.6])  # first chunk of each onset
    assert s.final_lag_s == pytest.approx([1.4 - 0.9, 3.0 - 2.4])
    assert s.end_to_final_s == pytest.approx(0.5)
    assert s.completed and s.wer == 0.0 and s.wer_shown == 0.0


def test_a_session_with_errors_or_no_final_is_not_complete() -> None:
    trace = Trace("x", timeline())
    trace.show(T0 + 1.0, "the cat")
    trace.completed = True
    trace.errors.append("no_worker: none")
    s = score(trace, OFFLINE, REFERENCE)
    assert not s.completed
    assert s.end_to_final_s is None and s.final_lag_s == []
    assert s.wer == 1.0 and s.wer_shown == pytest.approx(4 / 6)
    assert s.words_missed == 4


def test_a_trace_without_audio_cannot_be_scored() -> None:
    with pytest.raises(ValueError, match="sent no audio"):
        score(Trace("x"), OFFLINE, REFERENCE)


def test_whisperlive_segments_sent_again_count_once() -> None:
    trace = Trace("WhisperLive", timeline())
    state = _LiveState(trace)
    state.update([{"start": "0.000", "end": "0.900", "text": "the cat", "completed": False}], 1.0)
    first = {"start": "0.000", "end": "0.900", "text": "The cat sat.", "completed": True}
    pending = {"start": "0.900", "end": "2.000", "text": "the dog", "completed": False}
    state.update([first, pending], 2.0)
    state.update([first, {**pending, "text": "the dog ran"}], 2.5)
    assert trace.finals == [(2.0, "The cat sat.")]
    assert state.pending == "the dog ran" and trace.partials == 3
    assert trace.snapshots[-1] == (2.5, ["the", "cat", "sat", "the", "dog", "ran"])
    state.update([first, {**pending, "text": "The dog ran.", "completed": True}], 3.0)
    assert state.pending == "" and trace.final_text == "The cat sat. The dog ran."
