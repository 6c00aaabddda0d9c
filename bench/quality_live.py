"""A clip's live captions as a user would read them: the finals of one PyParrot session, over
``/ws/converse`` (at any pace) or WebRTC (a microphone, so real time). For the quality
harness and the live-accuracy evaluation: text only, no latency figures.
"""

import io

import av

from bench import live_clients, live_webrtc
from bench.live_clip import RATE_HZ, Clip
from bench.live_score import Trace

CHUNK_S = 0.1  # what the live benchmark's socket client sends per message
TIMEOUT_S = 120.0  # after the audio: how long the last final may take


def pcm16_16k(wav: bytes) -> bytes:
    """Any WAV (any rate, width or channels; or another format FFmpeg reads) as 16 kHz
    mono s16: what a live client sends."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE_HZ)
    out = []
    with av.open(io.BytesIO(wav)) as container:
        for frame in container.decode(audio=0):
            out += [f.to_ndarray().tobytes() for f in resampler.resample(frame)]
    out += [f.to_ndarray().tobytes() for f in resampler.resample(None)]  # its buffered tail
    return b"".join(out)


def converse_url(gateway_url: str) -> str:
    """The gateway's ``/ws/converse`` address from its base URL (http(s) or ws(s))."""
    base = gateway_url.rstrip("/").removesuffix("/ws/converse")
    base = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return f"{base}/ws/converse"


def _final_text(trace: Trace) -> str:
    if trace.errors or not trace.completed:
        raise RuntimeError(f"live session failed: {trace.errors or 'no audio_processed'}")
    return trace.final_text


async def live_text(gateway_url: str, wav: bytes, speed: float) -> str:
    """The concatenated finals of ``wav`` sent over ``/ws/converse`` at ``speed`` times real
    time (1.0: a microphone's pace)."""
    clip = Clip("quality", pcm16_16k(wav), "")
    name = f"PyParrot socket {speed:g}x"
    trace = await live_clients.pyparrot(
        converse_url(gateway_url), clip, CHUNK_S, TIMEOUT_S, name, speed
    )
    return _final_text(trace)


async def webrtc_text(gateway_url: str, wav: bytes) -> str:
    """The concatenated finals of ``wav`` played as a WebRTC microphone (``POST /offer``)."""
    base = gateway_url.rstrip("/").removesuffix("/ws/converse")
    base = base.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    clip = Clip("quality", pcm16_16k(wav), "")
    trace = await live_webrtc.session(base, clip, TIMEOUT_S, "PyParrot WebRTC")
    return _final_text(trace)
