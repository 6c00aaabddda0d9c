"""Streaming STT for one session over stateless workers.

The gateway owns the session state (VAD, the open utterance, the previous text); every job
it sends is self-contained, so any STT replica can answer any of them:

- while an utterance is open, a *partial* job over its recent audio each time
  ``partial_interval_s`` of new audio has arrived, at most one in flight per session (so
  partials never pile up behind a slow worker: the next one simply covers more audio);
- when it ends, a *final* job with word timings, prompted with the previous final's text;
- when it pauses (``speculate_silence_ms``), a *speculative* final over the audio so far: if
  the pause turns out to end the utterance, its transcript is the final, ready up to the
  rest of the pause sooner; if the speaker goes on, it is dropped. Partials stop during a
  pause: the utterance may be ending, and its final will say it all.

The speculative final's text also decides whether a short pause ends the utterance at all
(the segmenter asks ``_sentence_ended``): one that does not end a sentence (", ...", no
mark) is a hesitation, so the utterance goes on and its final is decoded whole.

Ordering: finals run as a chain (each waits for the one before, which also gives it the
right prompt), so they reach the client in utterance order whichever worker answers. A
partial is dropped once its utterance is closed, and held back while an earlier final is
still due, so the client never sees a partial of utterance n+1 before the final of n.
"""

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from services.gateway.core import Core
from services.gateway.errors import GatewayError
from services.gateway.live.engine import voices
from services.gateway.live.engine.segmenter import Segmenter, SegmenterOptions, Utterance
from services.gateway.live.vad import StreamingVad
from services.gateway.stages.stt import SttOptions, transcribe
from shared.audio import float32_to_pcm16
from shared.messages import SttMode, Transcript
from shared.silero import RATE_HZ, WINDOW
from shared.textnorm import SENTENCE_MARKS, without_closing

log = logging.getLogger(__name__)
T = TypeVar("T")
PROMPT_CHARS = 400  # Whisper reads at most ~224 prompt tokens; the end matters most
PAUSE_WINDOWS = 3  # ~0.1 s of trailing silence: no new partial, the utterance may be ending


def ends_sentence(text: str) -> bool:
    """Whether ``text`` ends as a complete sentence does (Whisper's "..." marks a
    trailing-off phrase; a comma or no mark, one that goes on)."""
    text = without_closing(text)
    if not text:
        return True  # nothing said: nothing to keep open for
    return text.endswith(SENTENCE_MARKS) and not text.endswith(("..", "…"))


def complete(t: Transcript, sure: float) -> bool:
    """Whether a speculative final ends a sentence: marked as one, and (Whisper marks any
    fragment before a pause) the model at least ``sure`` of that mark, where it says."""
    p = t.sentence_end_p
    return ends_sentence(t.text) and (p is None or not t.text.strip() or p >= sure)


@dataclass(frozen=True)
class Final:
    """A final transcript on the session's clock."""

    index: int
    start_s: float
    end_s: float
    text: str
    language: str
    pcm16: bytes = b""  # the utterance's 16 kHz audio (end2end speech translation)
    speaker: str | None = None  # the session's label of its voice (S1, ...), if known


class Sink(Protocol):
    """Where a transcriber's results go (the live session): its events in order, each final
    for the turns that follow it, and word that speech began (a barge-in)."""

    async def emit(self, event: dict[str, Any]) -> None: ...

    async def on_final(self, final: Final) -> None: ...

    async def on_speech(self) -> None: ...


def _words(t: Transcript, offset_s: float) -> list[dict[str, Any]]:
    return [
        {
            "word": w.word.strip(),
            "start": round(offset_s + w.start_s, 3),
            "end": round(offset_s + w.end_s, 3),
            "probability": round(w.probability, 3),
        }
        for s in t.segments
        for w in s.words
    ]


def _stable_prefix(previous: list[str], current: list[str]) -> list[str]:
    """Words two successive partials agree on: unlikely to change any more."""
    out = []
    for a, b in zip(previous, current, strict=False):
        if a != b:
            break
        out.append(a)
    return out


class Transcriber:
    """Turns one session's audio into ordered ``stt_partial`` / ``stt_final`` events."""

    def __init__(
        self, core: Core, vad: StreamingVad, sink: Sink, clock_s: float, first_index: int
    ) -> None:
        s = core.settings
        self.core = core
        self.vad = vad
        self.sink = sink
        self.clock_s = clock_s  # session time at which this connection's audio starts
        options = SegmenterOptions.from_settings(s)
        self.segmenter = Segmenter(options, first_index, self._sentence_ended)
        self.sure_end = s.live_sentence_end_p
        self.interval = int(s.live_partial_interval_s * RATE_HZ)
        self.window_s = s.live_partial_window_s
        self.speculate_windows = (
            max(1, round(s.live_speculate_silence_ms * RATE_HZ / 1000 / WINDOW))
            if s.live_speculate_silence_ms
            else 0
        )
        # Per pause of the open utterance, (utterance, speech windows before it): the job
        # transcribing it as if it ended there. Kept after the speaker goes on, as the text
        # may still show that the pause ended a sentence.
        self.speculations: dict[tuple[int, int], asyncio.Task[Transcript]] = {}
        self.pause_seen = False  # a speculation was made (or not possible) in this pause
        self.language: str | None = None  # the client's hint: every job uses it
        self.heard: str | None = None  # the last final's language: partials assume it
        self.prompt = ""
        self.tasks: set[asyncio.Task[Any]] = set()
        self.last_final: asyncio.Task[None] | None = None
        self.partial: asyncio.Task[None] | None = None
        self.partial_seq = 0
        self.partial_at = (-1, 0)  # (utterance, stream sample) of the last partial job
        self.partial_words: tuple[int, list[str]] = (-1, [])
        self.held: dict[str, Any] | None = None
        self.voices: voices.Voices | None = None  # set: each final says who spoke it

    async def feed(self, samples: np.ndarray) -> None:
        """Consume 16 kHz float32 audio: may start partial and final jobs."""
        windows, probs = self.vad.push(samples)
        done, started = self.segmenter.push(windows, probs)
        if started:
            await self.sink.on_speech()
        for utterance in done:
            self._start_final(utterance)
        self._maybe_split()
        self._maybe_speculate()
        self._maybe_partial()

    def flush(self) -> None:
        """End the open utterance now (``audio_complete``)."""
        for utterance in self.segmenter.flush():
            self._start_final(utterance)

    async def drain(self) -> None:
        """Wait until every final started so far has been delivered."""
        if self.last_final is not None:
            await asyncio.wait([self.last_final])

    async def close(self) -> None:
        """Cancel outstanding jobs (their late results are dropped by the bridge)."""
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks))

    def _spawn(self, coro: Awaitable[T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def _start_final(self, utterance: Utterance) -> None:
        self.last_final = self._spawn(self._final(utterance, self.last_final))

    def _final_job(self, u: Utterance) -> asyncio.Task[Transcript]:
        """Transcribe ``u`` as a final; its prompt is the text of every final before it."""
        options = SttOptions(
            language=self.language, prompt=self.prompt[-PROMPT_CHARS:] or None,
            word_timestamps=True, mode=SttMode.LIVE_FINAL,  # so no fallback re-decodes
        )  # fmt: skip
        task = self._spawn(transcribe(self.core, float32_to_pcm16(u.audio), options))
        # A speculation dropped after it failed is never awaited: read its error here, or
        # asyncio logs "exception was never retrieved".
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    def _maybe_speculate(self) -> None:
        """At a pause, start the final the pause would make, unless started already or an
        earlier final (whose text is this one's prompt) is still due."""
        if not self.speculate_windows:
            return
        if self.segmenter.pause_windows < self.speculate_windows:
            self.pause_seen = False  # speaking: the next pause may be the end
            return
        if self.pause_seen or (self.last_final is not None and not self.last_final.done()):
            return
        u = self.segmenter.tentative()
        if u is None:
            return
        self.pause_seen = True  # one speculation per pause
        self.speculations[(u.index, u.speech_windows)] = self._final_job(u)

    def _sentence_ended(self, index: int, speech_windows: int) -> bool:
        """Whether the speculation over this pause has come back, as a complete sentence.
        Without speculation nothing tells: every pause that long ends the utterance."""
        if not self.speculate_windows:
            return True
        task = self.speculations.get((index, speech_windows))
        if task is None or not task.done():
            return False  # not heard yet: wait (the long pause ends it anyway)
        if task.cancelled() or task.exception() is not None:
            return True  # no text to judge by: end as a pause alone would
        return complete(task.result(), self.sure_end)

    def _maybe_split(self) -> None:
        """A speculation that came back as a whole sentence after the speaker went on: the
        sentence ended at its pause, so end the utterance there (its final is that text)."""
        current = self.segmenter.current
        for key, task in sorted(self.speculations.items()):
            if current is None or key[0] != current.index or not task.done():
                continue
            if task.cancelled() or task.exception() is not None:
                continue
            said = task.result()
            if not (said.text.strip() and complete(said, self.sure_end)):
                continue
            if done := self.segmenter.split(*key):
                for utterance in done:
                    self._start_final(utterance)
                return

    async def _transcribe_final(self, u: Utterance) -> Transcript:
        """The speculative final made at the pause that ended this utterance, or a new job.
        The utterance's other speculations stand for nothing any more."""
        spec = self.speculations.pop((u.index, u.speech_windows), None)
        for key in [k for k in self.speculations if k[0] <= u.index]:
            self.speculations.pop(key).cancel()
        if spec is not None:
            try:
                return await spec
            except GatewayError as exc:
                log.info("speculative final failed (%s); transcribing again", exc.message)
        return await self._final_job(u)

    async def _final(self, u: Utterance, previous: asyncio.Task[None] | None) -> None:
        pcm16 = float32_to_pcm16(u.audio)
        # The voiceprint job runs beside the STT job, so the final waits for the slower one.
        who = self._spawn(self.voices.embed(pcm16)) if self.voices else None
        if previous is not None:
            await asyncio.wait([previous])  # order, and the previous text as the prompt
        try:
            t = await self._transcribe_final(u)
        except GatewayError as exc:
            if who is not None:
                who.cancel()
            await self.sink.emit(
                {"type": "error", "code": exc.code, "message": f"final transcript: {exc.message}"}
            )
            return
        heard = self.voices.label(await who) if self.voices and who else None
        if self.voices and heard:
            await self.voices.save(heard.label)
        self.prompt = f"{self.prompt} {t.text}".strip() if t.text else self.prompt
        self.heard = t.language if t.text else self.heard
        start_s = self.clock_s + u.start_s
        end_s = start_s + len(u.audio) / RATE_HZ
        final = Final(
            u.index, start_s, end_s, t.text, t.language, pcm16, heard.label if heard else None
        )
        event = {"type": "stt_final", "utterance": u.index, "text": t.text}
        event |= {"language": t.language, "start_s": round(start_s, 3)}
        event |= {"end_s": round(final.end_s, 3), "words": _words(t, start_s)}
        if self.voices is not None:
            event |= voices.fields(heard)
        await self.sink.emit(event)
        if self.voices and heard and (person := self.voices.person_event(heard, u.index)):
            await self.sink.emit(person)
        await self.sink.on_final(final)
        await self._release_held()

    def _maybe_partial(self) -> None:
        if self.partial is not None:
            return
        current = self.segmenter.current
        pausing = self.speculate_windows and self.segmenter.pause_windows >= PAUSE_WINDOWS
        if current is None or pausing:
            return  # none open, or pausing: the final may be next
        utterance, at = self.partial_at
        # New audio since the last partial of this utterance (all of it, for a new one).
        fresh = self.segmenter.samples - max(at, current.start_sample)
        if utterance != current.index:
            fresh = self.segmenter.samples - current.start_sample
        if fresh < self.interval:
            return
        window = self.segmenter.window_audio(self.window_s)
        if window is None:
            return
        self.partial_seq += 1
        self.partial_at = (current.index, self.segmenter.samples)
        self.partial = self._spawn(self._partial(self.partial_seq, *window))

    async def _partial(self, seq: int, utterance: int, audio: np.ndarray) -> None:
        prompt = self.prompt[-PROMPT_CHARS:] or None
        options = SttOptions(
            language=self.language or self.heard, prompt=prompt, mode=SttMode.PARTIAL,
            start_within_s=self.core.settings.live_partial_timeout_s,
        )  # fmt: skip
        try:
            t = await transcribe(self.core, float32_to_pcm16(audio), options)
        except GatewayError as exc:
            log.info("partial transcript failed: %s", exc.message)  # the final will report it
            t = None
        finally:
            self.partial = None
            self._maybe_partial()
        current = self.segmenter.current
        if t is None or not t.text or current is None or current.index != utterance:
            return  # nothing said yet, or the utterance is closed: its final supersedes this
        words = t.text.split()
        previous = self.partial_words[1] if self.partial_words[0] == utterance else []
        self.partial_words = (utterance, words)
        event = {"type": "stt_partial", "utterance": utterance, "seq": seq, "text": t.text}
        event |= {"stable": " ".join(_stable_prefix(previous, words)), "language": t.language}
        if self.last_final is not None and not self.last_final.done():
            self.held = event  # an earlier final is still due: it goes first
            return
        await self.sink.emit(event)

    async def _release_held(self) -> None:
        held, self.held = self.held, None
        current = self.segmenter.current
        if held is not None and current is not None and current.index == held["utterance"]:
            await self.sink.emit(held)
