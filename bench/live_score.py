"""What one live session showed its client, and the latency and accuracy figures drawn
from it. Pure logic: no I/O.

Definitions (all times ``time.time()`` in the client; "heard" = the chunk holding that
sample was sent, see ``live_clip``):

- *speech → text*, per word of the offline transcription: the first time the client's
  visible text (finals so far + the open partial) holds that word, minus when its last
  sample was heard. Words are matched by aligning the visible text to the words already
  being spoken (``difflib``), so a common word cannot match one not yet said.
- *utterance onset → first text*: utterances are runs of offline words with less than
  ``UTTERANCE_GAP_S`` between them; first time any of its words is visible, minus when its
  first sample was heard.
- *end of utterance → final*: per final message, its arrival minus when the last sample of
  the last offline word it holds was heard.
- *end of audio → last final*: arrival of the last final minus when the last chunk was sent.
"""

import difflib
from dataclasses import dataclass, field

from bench.live_clip import Offline, SpokenWord, Timeline
from shared.textnorm import normalize, wer

UTTERANCE_GAP_S = 0.3


@dataclass
class Trace:
    """Everything one session's client saw, with arrival times."""

    system: str
    timeline: Timeline | None = None
    snapshots: list[tuple[float, list[str]]] = field(default_factory=list)  # visible words
    finals: list[tuple[float, str]] = field(default_factory=list)
    partials: int = 0
    partial_times: list[float] = field(default_factory=list)  # arrivals of partial text
    completed: bool = False  # the system said (or showed) that all its text is final
    errors: list[str] = field(default_factory=list)
    waited_s: float = 0.0  # how long after the audio ended the client kept listening

    def show(self, at: float, visible: str) -> None:
        """Record what the client displays now."""
        self.snapshots.append((at, normalize(visible)))

    @property
    def final_text(self) -> str:
        return " ".join(text for _at, text in self.finals if text.strip())


@dataclass(frozen=True)
class Scores:
    """One session's figures, in seconds (lists: one entry per word/utterance/final)."""

    word_lag_s: list[float]
    words_missed: int
    onset_lag_s: list[float]
    final_lag_s: list[float]
    end_to_final_s: float | None  # None: no final arrived
    completed: bool
    wer: float
    wer_shown: float  # of the text on screen at the end, unconfirmed words included
    partials: int
    partial_gaps_s: list[float]  # between successive partial arrivals
    waited_s: float


def matched(spoken: list[str], shown: list[str]) -> set[int]:
    """Indices of ``spoken`` that ``shown`` holds, by an order-keeping alignment."""
    matcher = difflib.SequenceMatcher(None, spoken, shown, autojunk=False)
    return {block.a + k for block in matcher.get_matching_blocks() for k in range(block.size)}


def utterances(words: list[SpokenWord]) -> list[list[int]]:
    """Word indices grouped into utterances at pauses of ``UTTERANCE_GAP_S`` or more."""
    groups: list[list[int]] = []
    for i, word in enumerate(words):
        if not groups or word.start_s - words[i - 1].end_s >= UTTERANCE_GAP_S:
            groups.append([])
        groups[-1].append(i)
    return groups


def first_seen(trace: Trace, words: list[SpokenWord], timeline: Timeline) -> dict[int, float]:
    """Offline word index -> when the client first displayed it."""
    starts = [timeline.started_at(w.start_s) for w in words]
    tokens = [w.word for w in words]
    seen: dict[int, float] = {}
    for at, shown in trace.snapshots:
        begun = sum(1 for s in starts if s <= at)  # words in time order: a prefix
        for index in matched(tokens[:begun], shown):
            seen.setdefault(index, at)
    return seen


def _final_lags(trace: Trace, words: list[SpokenWord], timeline: Timeline) -> list[float]:
    """Per final message: arrival minus when its last offline word was fully heard."""
    tokens: list[str] = []
    owner: list[int] = []  # final index of each token
    for n, (_at, text) in enumerate(trace.finals):
        for token in normalize(text):
            tokens.append(token)
            owner.append(n)
    matcher = difflib.SequenceMatcher(None, [w.word for w in words], tokens, autojunk=False)
    last_word: dict[int, int] = {}
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            last_word[owner[block.b + k]] = block.a + k  # blocks ascend: the last one wins
    return [trace.finals[n][0] - timeline.heard_at(words[i].end_s) for n, i in last_word.items()]


def score(trace: Trace, offline: Offline, reference: str) -> Scores:
    """The figures of one session (its timeline must be set: the audio was sent)."""
    timeline = trace.timeline
    if timeline is None:
        raise ValueError(f"{trace.system}: the session sent no audio")
    words = offline.words
    seen = first_seen(trace, words, timeline)
    word_lag = [at - timeline.heard_at(words[i].end_s) for i, at in sorted(seen.items())]
    onset_lag = []
    for group in utterances(words):
        times = [seen[i] for i in group if i in seen]
        if times:
            onset_lag.append(min(times) - timeline.started_at(words[group[0]].start_s))
    last_final = max((at for at, _text in trace.finals), default=None)
    return Scores(
        word_lag_s=word_lag,
        words_missed=len(words) - len(seen),
        onset_lag_s=onset_lag,
        final_lag_s=_final_lags(trace, words, timeline),
        end_to_final_s=None if last_final is None else last_final - timeline.end,
        completed=trace.completed and not trace.errors,
        wer=wer(reference, trace.final_text),
        wer_shown=wer(reference, " ".join(trace.snapshots[-1][1]) if trace.snapshots else ""),
        partials=trace.partials,
        partial_gaps_s=[
            b - a for a, b in zip(trace.partial_times, trace.partial_times[1:], strict=False)
        ],
        waited_s=trace.waited_s,
    )
