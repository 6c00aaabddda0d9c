"""Cutting a live 16 kHz stream into utterances with VAD. Pure logic: no I/O, no asyncio.

An utterance starts when the speech probability reaches the threshold (with a little audio
from before, so the first phoneme is not clipped) and ends after ``min_silence_ms`` below
the lower threshold (hysteresis, as in Silero's own segmenter). Once an utterance is longer
than ``soft_utterance_s``, a shorter pause (``short_silence_ms``) ends it: fluent speakers
pause 0.3-0.5 s between sentences, and waiting for a long pause would keep one utterance open
for a whole paragraph, so its final (and every partial over it) would grow and come late.
Speech longer than ``max_utterance_s`` is cut at a pause (one known to end a sentence first),
and the rest goes on as the next utterance, so no words are lost at the cut.

A pause alone cannot tell the end of a sentence from a speaker's hesitation inside one (they
are as long as each other), and a sentence cut there loses its context and gets made-up
punctuation. So a pause up to ``long_silence_ms`` ends an utterance only if ``sentence_ended``
(the transcriber, from the text so far) says it is complete; a longer one ends it whatever
was said.
The text may come back after the speaker went on (a fluent reader's pause between sentences
is often shorter than a decode): ``split`` then ends the utterance at that pause after all.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from services.gateway.settings import GatewaySettings
from shared.silero import RATE_HZ, WINDOW


@dataclass(frozen=True)
class SegmenterOptions:
    threshold: float = 0.5
    min_silence_ms: int = 500
    speech_pad_ms: int = 200
    min_speech_ms: int = 200
    max_utterance_s: float = 18.0
    soft_utterance_s: float = 4.0
    short_silence_ms: int = 400
    long_silence_ms: int = 1_600

    @classmethod
    def from_settings(cls, s: GatewaySettings) -> "SegmenterOptions":
        """The gateway's live-session settings."""
        return cls(
            s.live_vad_threshold,
            s.live_min_silence_ms,
            s.live_speech_pad_ms,
            s.live_min_speech_ms,
            s.live_max_utterance_s,
            s.live_soft_utterance_s,
            s.live_short_silence_ms,
            s.live_long_silence_ms,
        )


@dataclass(frozen=True)
class Utterance:
    """A finished utterance: its audio and where it lies on the session's clock."""

    index: int
    audio: np.ndarray
    start_s: float
    speech_windows: int = 0  # windows up to the trailing pause: equal for two cuts of one pause


@dataclass
class _Open:
    index: int
    start_sample: int
    windows: list[np.ndarray] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)
    voiced: int = 0
    silence: int = 0  # trailing windows below the lower threshold
    pauses: dict[int, int] = field(default_factory=dict)  # speech windows before -> length


def _always(index: int, speech_windows: int) -> bool:
    return True


class Segmenter:
    """Feed (window, probability) pairs; collect utterances as they end.

    ``sentence_ended(index, speech_windows)``: whether the open utterance, as it stands up to
    its pause, is a complete sentence (asked while a pause shorter than the long one goes on).
    """

    def __init__(
        self,
        options: SegmenterOptions,
        first_index: int = 0,
        sentence_ended: Callable[[int, int], bool] = _always,
    ) -> None:
        self.o = options
        self.sentence_ended = sentence_ended
        self.neg_threshold = max(options.threshold - 0.15, 0.01)
        self.pad_windows = round(options.speech_pad_ms * RATE_HZ / 1000 / WINDOW)
        self.silence_windows = max(1, round(options.min_silence_ms * RATE_HZ / 1000 / WINDOW))
        self.max_windows = int(options.max_utterance_s * RATE_HZ / WINDOW)
        self.soft_windows = int(options.soft_utterance_s * RATE_HZ / WINDOW)
        short = round(options.short_silence_ms * RATE_HZ / 1000 / WINDOW)
        self.short_silence_windows = max(1, min(short, self.silence_windows))
        long = round(options.long_silence_ms * RATE_HZ / 1000 / WINDOW)
        self.long_silence_windows = max(long, self.silence_windows)
        self.min_voiced = round(options.min_speech_ms * RATE_HZ / 1000 / WINDOW)
        self.next_index = first_index
        self.samples = 0  # stream position, in samples
        self.current: _Open | None = None
        self._preroll: list[np.ndarray] = []

    @property
    def in_speech(self) -> bool:
        """Whether an utterance is open."""
        return self.current is not None

    def push(self, windows: np.ndarray, probs: np.ndarray) -> tuple[list[Utterance], bool]:
        """Consume scored windows; return finished utterances and whether speech started."""
        done: list[Utterance] = []
        started = False
        for window, prob in zip(windows, probs, strict=True):
            if self.current is None:
                started |= self._idle(window, float(prob))
            else:
                done += self._speaking(window, float(prob))
            self.samples += WINDOW
        return done, started

    def flush(self) -> list[Utterance]:
        """End the open utterance now (the client said its audio is complete)."""
        current, self.current = self.current, None
        self._preroll = []
        return self._finish(current, trim=current.silence) if current else []

    @property
    def pause_windows(self) -> int:
        """VAD windows of silence at the end of the open utterance (0 if none is open)."""
        return self.current.silence if self.current is not None else 0

    def tentative(self) -> Utterance | None:
        """The open utterance as it will end if its current pause goes on, or None if it is
        not speech yet. A final transcribed from it stands for the real one as long as no
        voice comes before the end: both then have the same ``speech_windows``."""
        cur = self.current
        if cur is None or not cur.windows:
            return None
        done = self._finish(cur, trim=max(cur.silence - self.pad_windows, 0))
        return done[0] if done else None

    def window_audio(self, max_s: float) -> tuple[int, np.ndarray] | None:
        """The open utterance's index and its most recent ``max_s`` of audio."""
        if self.current is None or not self.current.windows:
            return None
        keep = max(1, int(max_s * RATE_HZ / WINDOW))
        return self.current.index, np.concatenate(self.current.windows[-keep:])

    def _idle(self, window: np.ndarray, prob: float) -> bool:
        self._preroll = [*self._preroll, window][-self.pad_windows :] if self.pad_windows else []
        if prob < self.o.threshold:
            return False
        windows = self._preroll
        start = self.samples + WINDOW - WINDOW * len(windows)
        self.current = _Open(self.next_index, start, list(windows), [0.0] * len(windows))
        self.current.probs[-1] = prob
        self.current.voiced = 1
        self.next_index += 1
        self._preroll = []
        return True

    def _speaking(self, window: np.ndarray, prob: float) -> list[Utterance]:
        cur = self.current
        assert cur is not None
        cur.windows.append(window)
        cur.probs.append(prob)
        if prob >= self.o.threshold:
            cur.voiced += 1
            if cur.silence:
                cur.pauses[len(cur.windows) - 1 - cur.silence] = cur.silence
            cur.silence = 0
        elif prob < self.neg_threshold:
            cur.silence += 1
        needed = self._needed(len(cur.windows) - cur.silence)
        if cur.silence >= needed and self._sentence_over(cur):
            self.current = None
            self._preroll = cur.windows[-self.pad_windows :] if self.pad_windows else []
            return self._finish(cur, trim=max(cur.silence - self.pad_windows, 0))
        if len(cur.windows) >= self.max_windows:
            return self._cut(cur)
        return []

    def split(self, index: int, speech_windows: int) -> list[Utterance]:
        """End open utterance ``index`` at its earlier pause after ``speech_windows`` (found,
        after the speaker went on, to end a sentence) if that pause was long enough to end
        one; the speech since goes on as the next utterance. [] if it cannot be cut there.
        Only past the soft length: a text alone, without the pause going on, is too weak a
        sign to cut a short utterance, where a fragment reads like a sentence."""
        cur = self.current
        if cur is None or cur.index != index or speech_windows < self.soft_windows:
            return []
        pause = cur.pauses.get(speech_windows, 0)
        if pause < self._needed(speech_windows):
            return []
        kept = min(pause, self.pad_windows)  # as much of the pause as an ending keeps
        return self._split(cur, speech_windows + kept, kept)

    def _needed(self, speech_windows: int) -> int:
        """The pause that may end an utterance of this length."""
        if speech_windows >= self.soft_windows:
            return self.short_silence_windows  # long already: any sentence pause ends it
        return self.silence_windows

    def _sentence_over(self, cur: _Open) -> bool:
        if cur.silence >= self.long_silence_windows:
            return True
        return self.sentence_ended(cur.index, len(cur.windows) - cur.silence)

    def _cut(self, cur: _Open) -> list[Utterance]:
        """Split an over-long utterance where a sentence most likely ends: at its latest pause
        past the soft length whose text is known to end one; else at its longest pause in the
        second half; else at its quietest window there (a decode late under load must not
        leave the cut to fall inside a sentence when a pause was there to cut at)."""
        half = len(cur.probs) // 2
        ended = [
            k
            for k in sorted(cur.pauses, reverse=True)
            if k >= self.soft_windows and self.sentence_ended(cur.index, k)
        ]
        later = [k for k in cur.pauses if k >= half]
        if ended or later:
            k = ended[0] if ended else max(later, key=lambda at: (cur.pauses[at], at))
            kept = min(cur.pauses[k], self.pad_windows)
            cur.silence = 0
            return self._split(cur, k + kept, kept)
        quietest = half + int(np.argmin(cur.probs[half:]))
        cur.silence = 0
        return self._split(cur, quietest + 1, 0)

    def _split(self, cur: _Open, at: int, head_silence: int) -> list[Utterance]:
        """Finish ``cur``'s first ``at`` windows (the last ``head_silence`` of them a pause);
        the rest stays open as the next utterance."""
        head = _Open(cur.index, cur.start_sample, cur.windows[:at], silence=head_silence)
        head.voiced = sum(p >= self.o.threshold for p in cur.probs[:at])
        tail = _Open(self.next_index, cur.start_sample + WINDOW * at)
        tail.windows, tail.probs = cur.windows[at:], cur.probs[at:]
        tail.voiced = sum(p >= self.o.threshold for p in tail.probs)
        tail.silence = min(cur.silence, len(tail.windows))
        tail.pauses = {k - at: n for k, n in cur.pauses.items() if k > at}
        self.next_index += 1
        self.current = tail
        return self._finish(head, trim=0)

    def _finish(self, cur: _Open, trim: int) -> list[Utterance]:
        if cur.voiced < max(self.min_voiced, 1):
            return []  # a click or a breath, not speech
        windows = cur.windows[: len(cur.windows) - trim] if trim else cur.windows
        audio = np.concatenate(windows) if windows else np.zeros(0, dtype=np.float32)
        spoken = len(cur.windows) - cur.silence
        return [Utterance(cur.index, audio, cur.start_sample / RATE_HZ, spoken)]
