"""The adapter's reply parsing, without servers: WAV of any PCM width becomes mono s16."""

import io
import wave

import numpy as np
import pytest

from services.external.handler import from_wav
from shared.worker import JobFailed

RAMP = np.linspace(-30_000, 30_000, 500).astype("<i2")  # covers both signs


def wav_of(frames: bytes, width: int, channels: int, rate_hz: int = 22_050) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate_hz)
        wav.writeframes(frames)
    return out.getvalue()


def widened(samples: np.ndarray, width: int) -> bytes:
    """``samples`` (s16) as ``width``-byte little-endian PCM, low bytes zero."""
    if width == 1:
        return ((samples.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    as_bytes = samples.astype("<i2").view(np.uint8).reshape(-1, 2)
    low = np.zeros((len(samples), width - 2), dtype=np.uint8)
    return np.hstack([low, as_bytes]).tobytes()


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2])
def test_any_width_and_channels_become_mono_s16(width: int, channels: int) -> None:
    frames = np.repeat(
        np.frombuffer(widened(RAMP, width), np.uint8).reshape(-1, width), channels, 0
    )
    pcm, fmt = from_wav(wav_of(frames.tobytes(), width, channels))
    assert (fmt.sample_rate_hz, fmt.channels, fmt.sample_width_bytes) == (22_050, 1, 2)
    expected = (RAMP.astype(np.int32) >> 8 << 8) if width == 1 else RAMP
    assert np.array_equal(np.frombuffer(pcm, "<i2"), expected.astype("<i2"))


def test_stereo_channels_are_averaged() -> None:
    left, right = np.full(10, 1_000, "<i2"), np.full(10, -3_000, "<i2")
    pcm, _fmt = from_wav(wav_of(np.stack([left, right], 1).tobytes(), 2, 2))
    assert np.frombuffer(pcm, "<i2").tolist() == [-1_000] * 10


@pytest.mark.parametrize(
    "data", [b"", b"not a wav at all", wav_of(RAMP.tobytes(), 2, 1)[:30], wav_of(b"", 2, 1, 500)]
)
def test_a_bad_wav_fails_the_job(data: bytes) -> None:
    with pytest.raises(JobFailed) as failed:
        from_wav(data)
    assert failed.value.code == "bad_backend_reply"
