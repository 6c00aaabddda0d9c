"""One presenter connection's live session: audio in, ordered events out (to the socket
and to the session's Redis stream for listeners), history kept in Redis."""

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any, Protocol

from services.gateway.auth import Identity
from services.gateway.core import Core
from services.gateway.errors import GatewayError, bus_down
from services.gateway.live import vad
from services.gateway.live.engine.protocol import AudioInput, Auth, ProtocolError, error
from services.gateway.live.engine.store import Cue, SessionInfo, store_of
from services.gateway.live.engine.transcriber import Final, Transcriber
from services.gateway.live.engine.turns import Turn, Turns
from services.gateway.live.engine.voices import Voices
from shared import bus

log = logging.getLogger(__name__)
# Events listeners see (binary audio and connection bookkeeping stay on the socket).
PUBLISHED = frozenset({"stt_partial", "stt_final", "translation", "llm_response", "person"})
CONTROL_TYPES = ("audio_complete", "text_input", "interrupt")  # from the client, after auth
TTS_RATE_HZ = 24_000  # TTS audio is sent as 24 kHz s16le mono, whatever the voice's rate


class Socket(Protocol):
    """The client connection: bounded, never blocking the session."""

    def send_json(self, event: dict[str, Any]) -> None: ...

    def send_bytes(self, data: bytes) -> None: ...


class LiveSession:
    """Wires audio -> Transcriber -> Turns, and every event to the socket and the stream."""

    def __init__(
        self, core: Core, auth: Auth, info: SessionInfo, socket: Socket, presenter: Identity
    ) -> None:
        self.core, self.auth, self.info, self.socket = core, auth, info, socket
        self.store = store_of(core)
        self.input = AudioInput(auth.audio_format, auth.sample_rate)
        self._order = asyncio.Lock()  # the socket and listeners see events in the same order
        stream = vad.StreamingVad(vad.shared_session())
        # The session is the transcriber's Sink and the turns' Outlet: one callback style.
        self.stt = Transcriber(core, stream, self, info.audio_s, info.utterances)
        self.stt.language = auth.language
        self.stt.voices = Voices(core, info.owner or presenter.name, info.id)
        self.turns = Turns(core, auth, presenter, info.id, self.store, self)
        self.completions: set[asyncio.Task[None]] = set()
        self.closed = False
        core.metrics.live_sessions.inc()

    @classmethod
    async def open(
        cls, core: Core, auth: Auth, socket: Socket, presenter: Identity
    ) -> "LiveSession":
        """Create the session owned by ``presenter`` (or resume ``auth.session_id``, which
        only its owner or an admin may); raise ``ProtocolError``."""
        store = store_of(core)
        try:
            if auth.session_id is None:
                info = await store.create(auth.user_id, owner=presenter.name)
            elif (found := await store.get(auth.session_id)) is None:
                raise ProtocolError("unknown_session", f"no session {auth.session_id!r}")
            elif not presenter.owns(found.owner):
                raise ProtocolError(
                    "forbidden", "only the presenter who created this session may resume it"
                )
            else:
                info = found
                await store.save(info)
        except bus.TRANSIENT as exc:
            down = bus_down(exc)
            raise ProtocolError(down.code, down.message) from exc
        session = cls(core, auth, info, socket, presenter)
        if session.stt.voices is not None:
            await session.stt.voices.load()
        return session

    def started_event(self, resumed: bool) -> dict[str, Any]:
        """The ``session_started`` event."""
        return {
            "type": "session_started",
            "session_id": self.info.id,
            "user_id": self.info.user_id or None,
            "resumed": resumed,
            "pipeline": self.auth.pipeline,
            "target_languages": self.auth.target_languages,
            "tts_audio_format": "pcm_s16le",
            "tts_sample_rate": TTS_RATE_HZ,
        }

    async def emit(self, event: dict[str, Any]) -> None:
        """Send an event to the client and, if listeners care, publish it."""
        async with self._order:
            if event["type"] in PUBLISHED:
                try:
                    event = {**event, "id": await self.store.publish(self.info.id, event)}
                except bus.TRANSIENT as exc:
                    log.warning("session %s: event not published: %s", self.info.id, exc)
            self.socket.send_json(event)

    async def send_audio(self, data: bytes) -> None:
        """Send TTS audio to the client (binary frames)."""
        if data:
            self.socket.send_bytes(data)

    async def audio(self, data: bytes) -> None:
        """A binary audio message."""
        await self.stt.feed(self.input.decode(data))

    def complete(self) -> None:
        """``audio_complete``: finish the open utterance; say when all its results are out."""
        task = asyncio.create_task(self._complete())
        self.completions.add(task)
        task.add_done_callback(self.completions.discard)

    async def _complete(self) -> None:
        await self.stt.feed(self.input.finish())
        self.stt.flush()
        await self.stt.drain()
        await self.turns.drain()
        await self.emit({"type": "audio_processed", "utterances": self.stt.segmenter.next_index})

    async def control(self, message: dict[str, Any]) -> None:
        """A client's control message: ``audio_complete``, ``text_input`` or ``interrupt``."""
        kind = control_kind(message)
        if kind == "audio_complete":
            self.complete()
        elif kind == "text_input":
            self.text(message)
        else:
            await self.interrupt("client")

    def text(self, message: dict[str, Any]) -> None:
        """``text_input``: a typed turn, answered like a spoken one."""
        text = message.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 20_000:
            raise ProtocolError("invalid_message", "text_input needs 'text': 1-20000 characters")
        if self.auth.pipeline == "end2end":
            raise ProtocolError("unsupported", "pipeline 'end2end' only transcribes audio")
        self.turns.submit(Turn(-1, text.strip(), message.get("language") or "en"))

    async def interrupt(self, reason: str) -> None:
        """Barge-in: cancel the assistant's queued and running work, then acknowledge."""
        generation = await self.turns.interrupt()
        await self.emit({"type": "interrupt_ack", "generation": generation, "reason": reason})

    async def close(self) -> None:
        """Stop every task of this session (its history stays in Redis)."""
        if not self.closed:
            self.closed = True
            self.core.metrics.live_sessions.dec()
        for task in list(self.completions):
            task.cancel()
        await self.stt.close()
        await self.turns.close()

    async def on_speech(self) -> None:
        """Speech began: in a dialog, a reply still running is interrupted (barge-in)."""
        if self.auth.pipeline == "dialog" and self.turns.busy:
            await self.interrupt("speech")

    async def on_final(self, final: Final) -> None:
        """A final utterance: kept in the history, then handed to the turns."""
        if final.text:
            cue = Cue(
                final.index, final.start_s, final.end_s, final.text, final.language, final.speaker
            )
            try:
                await self.store.append(self.info, cue)
            except bus.TRANSIENT as exc:
                log.warning("session %s: history not saved: %s", self.info.id, exc)
            if self.auth.pipeline != "end2end" or self.auth.target_languages:
                turn = Turn(final.index, final.text, final.language, final.pcm16)
                self.turns.submit(turn)


@contextlib.contextmanager
def reported(socket: Socket, transport: str) -> Iterator[None]:
    """Turn a client message that failed into an ``error`` event: the connection, and the
    session, stay usable (a bug in the gateway included)."""
    try:
        yield
    except (ProtocolError, GatewayError) as exc:
        socket.send_json(error(exc.code, exc.message))
    except Exception:
        log.exception("%s message failed", transport)
        socket.send_json(error("internal_error", "the gateway failed on this message"))


def control_kind(message: dict[str, Any]) -> str:
    """The type of a control message; raise ``ProtocolError`` for an unknown one."""
    kind = message.get("type")
    if kind not in CONTROL_TYPES:
        raise ProtocolError("unknown_type", f"unknown message type {str(kind)[:64]!r}")
    return str(kind)


def dumps(event: dict[str, Any]) -> str:
    """One event as compact JSON."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)
