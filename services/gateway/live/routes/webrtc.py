"""``POST /offer``: a presenter's microphone over WebRTC (aiortc), into the same live session
as ``/ws/converse``.

The client sends an SDP offer with one audio track and a data channel; the answer comes back
in the response with the session id. The audio track (Opus, decoded by aiortc) feeds the
session as the socket's binary frames would. The data channel speaks the socket's protocol
minus ``auth`` (the options come with the offer, the key in the request's headers): the
client sends ``audio_complete``, ``text_input`` and ``interrupt`` as JSON text and gets every
event as JSON text, TTS audio as binary messages. Listeners follow the session over SSE as
usual. Media and control travel on different channels, so ``audio_complete`` waits until the
track has been quiet for a moment: audio still in flight is not cut off.

ICE uses host candidates only unless ``GATEWAY_WEBRTC_ICE_SERVERS`` names STUN/TURN servers
(aiortc would otherwise ask a public STUN server, which these machines cannot reach).
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from fastapi import APIRouter, Depends, Request
from pydantic import Field

from services.gateway.auth import Identity, caller
from services.gateway.core import Core
from services.gateway.errors import GatewayError
from services.gateway.live.engine import access
from services.gateway.live.engine.live_session import LiveSession, dumps, reported
from services.gateway.live.engine.protocol import (
    Auth,
    ProtocolError,
    SessionOptions,
    check_options,
    error,
    parse_message,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["live"])
RATE_HZ = 48_000  # Opus decodes at 48 kHz; the session resamples to Whisper's 16 kHz
MAX_SDP_CHARS = 64_000
MESSAGE_BYTES = 16_384  # TTS audio goes out in pieces this size (SCTP's limit is 64 KiB)
PENDING_MESSAGES = 256  # events kept for a data channel that is not open yet
QUIET_S = 0.25  # audio_complete waits until the track was silent this long ...
QUIET_MAX_S = 2.0  # ... but no longer than this
CONNECT_TIMEOUT_S = 30.0  # from the answer to a connected peer
STATUS = {"unknown_session": 404, "forbidden": 403, "bus_down": 503}


class Offer(SessionOptions):
    """An SDP offer, and the session's options (as in the socket's ``auth`` message)."""

    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)
    type: Literal["offer"]


class ChannelSocket:
    """The session's outgoing side over the client's data channel: never blocks; a client
    that stops reading (its channel's buffer over ``limit_bytes``) is dropped."""

    def __init__(self, limit_bytes: int) -> None:
        self.channel: RTCDataChannel | None = None
        self.pending: deque[str | bytes] = deque()
        self.limit_bytes = limit_bytes
        self.dropped = asyncio.Event()

    def attach(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        while self.pending and not self.dropped.is_set():
            self._send(self.pending.popleft())

    def send_json(self, event: dict[str, Any]) -> None:
        self._put(dumps(event))

    def send_bytes(self, data: bytes) -> None:
        for at in range(0, len(data), MESSAGE_BYTES):
            self._put(data[at : at + MESSAGE_BYTES])

    def _put(self, item: str | bytes) -> None:
        if self.dropped.is_set():
            return
        if self.channel is None or self.channel.readyState != "open":
            if len(self.pending) >= PENDING_MESSAGES:
                self.drop("no data channel opened for the session's events")
            self.pending.append(item)
            return
        self._send(item)

    def _send(self, item: str | bytes) -> None:
        assert self.channel is not None
        if self.channel.bufferedAmount > self.limit_bytes:
            self.drop("the client is not reading its data channel")
            return
        self.channel.send(item)

    def drop(self, reason: str) -> None:
        if not self.dropped.is_set():
            log.warning("dropping WebRTC client: %s", reason)
            self.dropped.set()


class Peer:
    """One WebRTC presenter: its peer connection, its session and the task reading audio."""

    def __init__(self, pc: RTCPeerConnection, socket: ChannelSocket) -> None:
        self.pc = pc
        self.socket = socket
        self.session: LiveSession | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.heard = asyncio.Event()  # set by every audio frame
        self.closed = asyncio.Event()
        self.on_close: Callable[[], None] | None = None
        self.listening = False

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def listen(self, track: MediaStreamTrack) -> None:
        """Feed the track's audio to the session until it ends (or the peer closes)."""
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE_HZ)
        try:
            while True:
                frame = await track.recv()
                self.heard.set()
                if self.session is None:
                    continue
                for out in resampler.resample(frame):
                    await self.session.audio(out.to_ndarray().tobytes())
        except MediaStreamError:  # the remote stopped sending (RTCP BYE) or closed
            if self.session is not None and not self.closed.is_set():
                self.session.complete()
        except Exception as exc:  # a bug or undecodable audio: say so, end this connection
            log.exception("WebRTC audio failed")
            self.socket.send_json(error("bad_audio", f"the audio track failed: {exc}"))
            self.spawn(self.close())

    async def connected_within(self, timeout_s: float) -> None:
        """Close the peer if ICE has not connected within ``timeout_s`` (a client that took
        its answer and never came back)."""
        await asyncio.sleep(timeout_s)
        if self.pc.connectionState != "connected":
            log.warning("WebRTC client never connected within %.0f s", timeout_s)
            await self.close()

    async def message(self, data: str | bytes) -> None:
        """A data-channel message: the socket protocol's control messages."""
        with reported(self.socket, "WebRTC data channel"):
            if isinstance(data, bytes):
                raise ProtocolError("unsupported", "audio goes in the WebRTC track, not here")
            message = parse_message(data)
            if message.get("type") == "audio_complete":
                await self._quiet()
            if self.session is not None:
                await self.session.control(message)

    async def _quiet(self) -> None:
        """Wait until no audio frame came for ``QUIET_S`` (at most ``QUIET_MAX_S``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(QUIET_MAX_S):
                while True:
                    self.heard.clear()
                    try:
                        await asyncio.wait_for(self.heard.wait(), QUIET_S)
                    except TimeoutError:
                        return

    async def close(self) -> None:
        """End the session's connection (its history stays) and the peer connection."""
        if self.closed.is_set():
            return
        self.closed.set()
        if self.on_close is not None:
            self.on_close()
        others = [t for t in self.tasks if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        if self.session is not None:
            await self.session.close()
        await self.pc.close()


class Peers:
    """The gateway's WebRTC presenters: a bound, and closing them all at shutdown."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.live: set[Peer] = set()

    def admit(self) -> None:
        if self.limit == 0:
            raise GatewayError(404, "WebRTC ingest is turned off (GATEWAY_WEBRTC_MAX_PEERS=0)",
                               "webrtc_disabled")  # fmt: skip
        if len(self.live) >= self.limit:
            raise GatewayError(503, f"{self.limit} WebRTC presenters already connected",
                               "too_many_peers")  # fmt: skip

    def add(self, peer: Peer) -> None:
        self.live.add(peer)
        peer.on_close = lambda: self.live.discard(peer)

    async def close_all(self) -> None:
        await asyncio.gather(*(peer.close() for peer in list(self.live)))


def _configuration(core: Core) -> RTCConfiguration:
    servers = [RTCIceServer(urls=url) for url in core.settings.webrtc_ice_servers]
    return RTCConfiguration(iceServers=servers)  # [] and not None: no default STUN server


def _wire(peer: Peer) -> None:
    """Route the peer connection's events: its audio track, data channel and state."""
    pc = peer.pc

    @pc.on("track")
    def _track(track: MediaStreamTrack) -> None:
        if track.kind == "audio" and not peer.listening:
            peer.listening = True  # one microphone per session; further tracks are ignored
            peer.spawn(peer.listen(track))

    @pc.on("datachannel")
    def _channel(channel: RTCDataChannel) -> None:
        channel.on("message", lambda data: peer.spawn(peer.message(data)))
        peer.socket.attach(channel)

    @pc.on("connectionstatechange")
    async def _state() -> None:
        if pc.connectionState in ("failed", "closed"):
            await peer.close()

    async def _dropped() -> None:
        await peer.socket.dropped.wait()
        await peer.close()

    peer.spawn(_dropped())


async def _open(core: Core, offer: Offer, peer: Peer, identity: Identity) -> LiveSession:
    options = offer.model_dump(include=set(SessionOptions.model_fields))
    auth = Auth(type="auth", audio_format="pcm_s16le", sample_rate=RATE_HZ, **options)
    try:
        check_options(auth)
        return await LiveSession.open(core, auth, peer.socket, identity)
    except ProtocolError as exc:
        raise GatewayError(STATUS.get(exc.code, 422), exc.message, exc.code) from exc


@router.post("/offer", summary="Stream a microphone over WebRTC into a live session")
async def offer(
    request: Request, body: Offer, identity: Annotated[Identity, Depends(caller)]
) -> dict[str, Any]:
    """Answer ``body``'s SDP offer; the session's events come back on its data channel."""
    core: Core = request.app.state.core
    peers: Peers = request.app.state.peers
    peers.admit()
    await access.may_open(core, identity)
    pc = RTCPeerConnection(_configuration(core))
    peer = Peer(pc, ChannelSocket(core.settings.live_send_queue * MESSAGE_BYTES))
    try:
        _wire(peer)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=body.sdp, type="offer"))
        except Exception as exc:  # aiortc raises ValueError and others on a bad SDP
            reason = str(exc) or type(exc).__name__
            raise GatewayError(400, f"bad SDP offer: {reason}", "bad_sdp") from exc
        if not any(t.kind == "audio" for t in pc.getTransceivers()):
            raise GatewayError(400, "the offer has no audio track", "no_audio")
        peer.session = await _open(core, body, peer, identity)
        await pc.setLocalDescription(await pc.createAnswer())
    except BaseException:
        await peer.close()
        raise
    peers.add(peer)
    peer.spawn(peer.connected_within(CONNECT_TIMEOUT_S))
    peer.socket.send_json(peer.session.started_event(resumed=body.session_id is not None))
    return {"type": "answer", "sdp": pc.localDescription.sdp, "session_id": peer.session.info.id}
