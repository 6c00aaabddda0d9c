"""What follows a final transcript: translation and speech (cascaded) or an assistant reply
(dialog), one turn at a time per session, with barge-in.

Each turn runs under the session's *generation*. ``interrupt`` bumps the generation,
empties the queue, cancels the running turn and records the cancelled turn in Redis for
workers that check before working; anything a cancelled turn still produces is dropped
here, so no stale sentence reaches the client after ``interrupt_ack``.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from services.gateway.auth import Identity
from services.gateway.core import Core
from services.gateway.errors import GatewayError
from services.gateway.live.engine.protocol import END2END_TARGET, Auth
from services.gateway.live.engine.store import SessionStore
from services.gateway.stages import llm, mt, tts
from services.gateway.stages.stt import speech_to_english
from shared import bus

log = logging.getLogger(__name__)


class Outlet(Protocol):
    """Where a session's events and audio go."""

    async def emit(self, event: dict[str, Any]) -> None: ...

    async def send_audio(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class Turn:
    index: int  # the utterance index (or -1 for typed text)
    text: str
    language: str
    pcm16: bytes = b""  # the utterance's 16 kHz audio, for end2end speech translation


class Turns:
    """The per-session queue of turns after STT."""

    def __init__(
        self,
        core: Core,
        auth: Auth,
        presenter: Identity,
        session_id: str,
        store: SessionStore,
        outlet: Outlet,
    ) -> None:
        self.core, self.auth, self.session_id, self.store = core, auth, session_id, store
        self.presenter = presenter  # the dialog's conversation and memory are theirs
        self._emit, self._send_audio = outlet.emit, outlet.send_audio
        self.queue: asyncio.Queue[Turn | asyncio.Future[None]] = asyncio.Queue()
        self.generation = 0
        self.turns = 0
        self.active: asyncio.Task[None] | None = None
        self.reported: set[tuple[str, str]] = set()
        self.closed = False
        self.runner = asyncio.create_task(self._run())

    def submit(self, turn: Turn) -> None:
        """Queue a turn."""
        self.queue.put_nowait(turn)

    @property
    def busy(self) -> bool:
        """Whether a turn is being answered."""
        return self.active is not None and not self.active.done()

    async def drain(self) -> None:
        """Wait until every turn queued so far is finished (or cancelled)."""
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(marker)
        await marker

    async def interrupt(self) -> int:
        """Cancel queued and running turns; return the new generation."""
        self.generation += 1
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if isinstance(item, asyncio.Future) and not item.done():
                item.set_result(None)
        if self.active is not None:
            self.active.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([self.active])
        await self.store.cancel_turn(self.session_id, self.turns)
        return self.generation

    async def close(self) -> None:
        """Stop the runner and any running turn."""
        self.closed = True
        self.runner.cancel()
        # redis-py can swallow a cancel that lands just as a command starts (the command then
        # returns as usual): the flag and a wake-up end the runner's loop all the same.
        self.queue.put_nowait(asyncio.get_running_loop().create_future())
        if self.active is not None:
            self.active.cancel()
        await asyncio.wait([t for t in (self.runner, self.active) if t is not None])

    async def _run(self) -> None:
        try:
            self.turns = await self.store.cancelled_turn(self.session_id)
        except bus.TRANSIENT as exc:  # then numbering starts at 1; workers may skip a turn
            log.warning("session %s: cancelled turns unknown: %s", self.session_id, exc)
        while not self.closed:
            item = await self.queue.get()
            if isinstance(item, asyncio.Future):
                if not item.done():
                    item.set_result(None)
                continue
            self.turns += 1
            self.active = asyncio.create_task(self._turn(item, self.generation))
            await asyncio.wait([self.active])
            if not self.active.cancelled() and (exc := self.active.exception()) is not None:
                log.error("turn failed: %r", exc)

    async def _turn(self, turn: Turn, generation: int) -> None:
        async def emit(event: dict[str, Any]) -> None:
            if generation == self.generation:  # a cancelled turn's results are dropped
                await self._emit(event)

        if self.auth.pipeline == "cascaded":
            await self._cascaded(turn, emit, generation)
        elif self.auth.pipeline == "end2end":
            await self._end2end(turn, emit)
        elif self.auth.pipeline == "dialog":
            await self._dialog(turn, emit, generation)

    async def _report(self, emit: Callable[..., Awaitable[None]], exc: GatewayError) -> None:
        """Tell the client about a failing stage once, not after every utterance."""
        if (exc.code, exc.message) not in self.reported:
            self.reported.add((exc.code, exc.message))
            await emit({"type": "error", "code": exc.code, "message": exc.message})

    async def _translate(self, turn: Turn, target: str) -> str | GatewayError:
        if target == turn.language:
            return turn.text
        try:
            return (await mt.translate(self.core, turn.text, turn.language, target)).text
        except GatewayError as exc:
            return exc

    async def _end2end(self, turn: Turn, emit: Callable[..., Awaitable[None]]) -> None:
        """Speech straight to English text by Whisper's translate task (one model, no MT)."""
        if END2END_TARGET not in self.auth.target_languages or not turn.text:
            return
        try:
            text = await speech_to_english(self.core, turn.pcm16, turn.language)
        except GatewayError as exc:
            await self._report(emit, exc)
            return
        await emit(
            {"type": "translation", "utterance": turn.index, "language": END2END_TARGET}
            | {"source_language": turn.language, "text": text or turn.text}
        )

    async def _cascaded(self, turn: Turn, emit: Callable[..., Awaitable[None]], gen: int) -> None:
        targets = self.auth.target_languages
        results = await asyncio.gather(*(self._translate(turn, t) for t in targets))
        spoken: tuple[str, str] | None = None
        for target, result in zip(targets, results, strict=True):
            if isinstance(result, GatewayError):
                await self._report(emit, result)
                continue
            await emit(
                {"type": "translation", "utterance": turn.index, "language": target}
                | {"source_language": turn.language, "text": result}
            )
            spoken = spoken or (result, target)
        if self.auth.voice is not None and turn.text:
            text, language = spoken or (turn.text, turn.language)
            await self._speak(text, language, turn.index, emit, gen)

    async def _dialog(self, turn: Turn, emit: Callable[..., Awaitable[None]], gen: int) -> None:
        pieces: list[str] = []
        try:
            session = await llm.open_session(
                self.core, self.session_id, self.auth.user_id or None, self.presenter
            )
            replies = llm.converse_stream(self.core, session, turn.text, self.turns)
            async for chunk in replies:
                piece = chunk.text
                pieces.append(piece)
                await emit({"type": "llm_response", "turn": self.turns, "text": piece})
                if self.auth.voice is not None and tts.speakable(piece):
                    await self._speak(piece, None, self.turns, emit, gen, complete=False)
        except GatewayError as exc:
            await self._report(emit, exc)
            return
        done = {"type": "llm_response", "turn": self.turns, "text": " ".join(pieces)}
        await emit(done | {"final": True})
        if self.auth.voice is not None:
            await emit({"type": "tts_complete", "turn": self.turns})

    async def _speak(
        self,
        text: str,
        language: str | None,
        index: int,
        emit: Callable[..., Awaitable[None]],
        gen: int,
        complete: bool = True,
    ) -> None:
        """Synthesise ``text``; send it as binary 24 kHz s16le frames (then ``tts_complete``)."""
        options = tts.SpeechOptions(
            text=text, voice=self.auth.voice or "", language=language,
            session=self.session_id, turn=self.turns,
        )  # fmt: skip
        encoder: tts.Encoder | None = None
        try:
            async for chunk in tts.speak(self.core, options):
                encoder = encoder or tts.Encoder("pcm", chunk.audio_format)
                if gen == self.generation:
                    await self._send_audio(encoder.encode(chunk.audio))
            if encoder is not None and gen == self.generation:
                await self._send_audio(encoder.finish())
        except GatewayError as exc:
            # A reply piece of only "..." or "-" has nothing to say: not an error to the
            # client (the HTTP assistant skips it the same way, llm.speak_replies).
            if complete or exc.code != "empty_text":
                await self._report(emit, exc)
        if complete:
            await emit({"type": "tts_complete", "utterance": index})
