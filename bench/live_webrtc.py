"""A PyParrot presenter over WebRTC (``POST /offer``) for the live benchmark: the clip as an
aiortc microphone track (Opus over loopback UDP), the session's events on the data channel.

The track hands aiortc one 20 ms frame when a microphone would have it (frame ``i`` at
``t0 + (i + 1) * 20 ms`` at ``speed`` 1) and records when; after the clip it goes quiet, as
a muted microphone does, so the gateway's ``audio_complete`` wait (the track quiet for
``QUIET_S``) is what the benchmark charges after the audio.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from fractions import Fraction

import av
import httpx
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from bench.live_clients import CONNECT_TIMEOUT_S, pyparrot_events
from bench.live_clip import RATE_HZ, Clip, Timeline
from bench.live_score import Trace

FRAME_S = 0.02  # what a browser's Opus sender packs per packet


class ClipTrack(MediaStreamTrack):
    """A microphone playing 16 kHz s16 ``pcm16`` at ``speed`` times real time, then quiet."""

    kind = "audio"

    def __init__(self, pcm16: bytes, speed: float = 1.0) -> None:
        super().__init__()
        self.samples = np.frombuffer(pcm16, dtype="<i2")
        self.speed = speed
        self.at = 0
        self.origin: float | None = None
        self.sent: list[float] = []  # time.time() of each frame handed over
        self.played = asyncio.Event()

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        self.origin = self.origin or loop.time()
        step = int(RATE_HZ * FRAME_S)
        if self.at >= len(self.samples):
            self.played.set()
            await asyncio.Event().wait()  # quiet until the connection closes
        due = self.origin + (self.at / step + 1) * FRAME_S / self.speed
        await asyncio.sleep(max(0.0, due - loop.time()))
        chunk = self.samples[self.at : self.at + step]
        if len(chunk) < step:
            chunk = np.concatenate([chunk, np.zeros(step - len(chunk), dtype="<i2")])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE_HZ, self.at, Fraction(1, RATE_HZ)
        self.at += step
        self.sent.append(time.time())
        return frame


async def _messages(queue: "asyncio.Queue[str | bytes]") -> AsyncIterator[str | bytes]:
    while True:
        yield await queue.get()


async def session(base_url: str, clip: Clip, timeout_s: float, name: str) -> Trace:
    """One presenter session (pipeline end2end: captions only) over WebRTC."""
    trace = Trace(name)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = ClipTrack(clip.pcm)
    pc.addTrack(track)
    channel = pc.createDataChannel("events")
    queue: asyncio.Queue[str | bytes] = asyncio.Queue()
    channel.on("message", queue.put_nowait)
    opened = asyncio.Event()
    channel.on("open", opened.set)
    reader: asyncio.Task[None] | None = None
    try:
        await pc.setLocalDescription(await pc.createOffer())
        body = {"sdp": pc.localDescription.sdp, "type": "offer"}
        body |= {"pipeline": "end2end", "language": "en"}
        async with httpx.AsyncClient(base_url=base_url, timeout=CONNECT_TIMEOUT_S) as http:
            response = await http.post("/offer", json=body)
        if response.status_code != 200:
            trace.errors.append(f"/offer answered {response.status_code}: {response.text}")
            return trace
        await pc.setRemoteDescription(RTCSessionDescription(response.json()["sdp"], "answer"))
        reader = asyncio.create_task(pyparrot_events(_messages(queue), trace))
        await asyncio.wait_for(opened.wait(), CONNECT_TIMEOUT_S)
        await asyncio.wait_for(track.played.wait(), clip.duration_s + CONNECT_TIMEOUT_S)
        trace.timeline = Timeline(track.sent, FRAME_S)
        channel.send(json.dumps({"type": "audio_complete"}))
        try:
            await asyncio.wait_for(reader, timeout_s)
        except TimeoutError:
            trace.errors.append(f"no audio_processed within {timeout_s:g} s")
        trace.waited_s = time.time() - trace.timeline.end
    finally:
        if reader is not None:
            reader.cancel()
        await pc.close()
    return trace
