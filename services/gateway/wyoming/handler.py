"""One Wyoming connection: events in, a small state machine, events out.

Any request-level fault becomes an ``error`` event and the connection stays usable; a fault
of the connection itself ends only this connection.
"""

import asyncio
import logging

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize

from services.gateway.core import Core
from services.gateway.errors import GatewayError, bus_guard
from services.gateway.wyoming import speech
from services.gateway.wyoming.audio import BadAudio, PcmCollector
from services.gateway.wyoming.info import build_info
from shared.heartbeat import WorkerInfo

log = logging.getLogger(__name__)

# Streaming synthesis: a server that does not advertise it ignores these, and the client
# also sends a plain ``synthesize`` (protocol rule), which is served.
IGNORED = {"synthesize-start", "synthesize-chunk", "synthesize-stop"}


class OutOfOrder(ValueError):
    """An event that makes no sense in the connection's current state."""


class WyomingHandler(AsyncEventHandler):
    """Serves describe, transcribe + audio, synthesize and ping for one client."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        core: Core,
        live: set[asyncio.Task[None]],
    ) -> None:
        super().__init__(reader, writer)
        self.core = core
        self._live = live
        self._request = Transcribe()
        self._audio: PcmCollector | None = None
        self._discarding = False  # rest of a stream we already refused: drop it quietly

    async def run(self) -> None:
        """Serve until the client leaves; a broken connection is logged, never raised."""
        task = asyncio.current_task()
        assert task is not None
        self._live.add(task)
        try:
            await super().run()
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("wyoming client left mid-conversation: %r", exc)
        finally:
            self._live.discard(task)

    async def handle_event(self, event: Event) -> bool:
        """Handle one event; request faults become ``error`` events, the connection stays."""
        try:
            await self._dispatch(event)
        except GatewayError as exc:
            await self._error(exc.message, exc.code)
        except (BadAudio, OutOfOrder) as exc:
            await self._error(str(exc), "bad_audio" if isinstance(exc, BadAudio) else "bad_order")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # wyoming's from_event() raises these on missing or mistyped fields.
            await self._error(f"malformed {event.type!r} event: {exc!r}", "bad_event")
        return True

    async def _error(self, text: str, code: str) -> None:
        if self._audio is not None:
            self._audio, self._discarding = None, True
        log.info("wyoming request refused (%s): %s", code, text)
        await self.write_event(Error(text=text, code=code).event())

    async def _dispatch(self, event: Event) -> None:
        if AudioChunk.is_type(event.type):
            self._chunk(AudioChunk.from_event(event))
        elif AudioStart.is_type(event.type):
            self._start(AudioStart.from_event(event))
        elif AudioStop.is_type(event.type):
            await self._stop()
        elif Transcribe.is_type(event.type):
            self._busy_check("transcribe")
            self._request = Transcribe.from_event(event)
        elif Synthesize.is_type(event.type):
            self._busy_check("synthesize")
            await speech.synthesize(self.core, Synthesize.from_event(event), self.write_event)
        elif Describe.is_type(event.type):
            await self.write_event(build_info(await self._workers()).event())
        elif Ping.is_type(event.type):
            await self.write_event(Pong(text=Ping.from_event(event).text).event())
        elif event.type not in IGNORED:
            raise GatewayError(400, f"unknown event type {event.type!r}", "unknown_event")

    def _busy_check(self, what: str) -> None:
        if self._audio is not None:
            raise OutOfOrder(f"{what} during an audio stream (send audio-stop first)")

    def _start(self, start: AudioStart) -> None:
        self._busy_check("audio-start")
        self._discarding = True  # if the format is refused, drop the rest of this stream
        self._audio = PcmCollector(start, self.core.settings.max_audio_s)
        self._discarding = False

    def _chunk(self, chunk: AudioChunk) -> None:
        if self._audio is None:
            if self._discarding:
                return
            raise OutOfOrder("audio-chunk before audio-start")
        self._audio.add(chunk)

    async def _stop(self) -> None:
        if self._audio is None:
            if self._discarding:
                self._discarding = False
                return
            raise OutOfOrder("audio-stop before audio-start")
        pcm16 = self._audio.finish()
        request, self._audio, self._request = self._request, None, Transcribe()
        await speech.transcribe(self.core, request, pcm16, self.write_event)

    async def _workers(self) -> list[WorkerInfo]:
        with bus_guard():
            return await self.core.registry.workers()
