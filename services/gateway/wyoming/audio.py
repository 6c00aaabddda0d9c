"""Collecting a client's audio stream as 16 kHz mono s16, whatever format it declared."""

import numpy as np
import soxr
from wyoming.audio import AudioChunk, AudioStart

from shared.audio import WHISPER_RATE_HZ

WIDTHS = {1: "u1", 2: "<i2", 4: "<i4"}  # Wyoming's width is bytes; 8-bit PCM is unsigned
MAX_CHANNELS = 32
RATE_RANGE_HZ = (1_000, 384_000)


class BadAudio(ValueError):
    """The client's audio cannot be used; the message says why."""


def _check_format(rate: int, width: int, channels: int) -> None:
    if width not in WIDTHS:
        raise BadAudio(f"sample width {width} bytes is not supported (use 1, 2 or 4)")
    if not RATE_RANGE_HZ[0] <= rate <= RATE_RANGE_HZ[1]:
        raise BadAudio(f"sample rate {rate} Hz is outside {RATE_RANGE_HZ[0]}-{RATE_RANGE_HZ[1]}")
    if not 1 <= channels <= MAX_CHANNELS:
        raise BadAudio(f"{channels} channels is not supported (1-{MAX_CHANNELS})")


class PcmCollector:
    """Converts each chunk as it arrives, so memory holds only the 16 kHz mono result."""

    def __init__(self, start: AudioStart, max_audio_s: float) -> None:
        _check_format(start.rate, start.width, start.channels)
        self.rate, self.width, self.channels = start.rate, start.width, start.channels
        self._max_bytes = int(max_audio_s * WHISPER_RATE_HZ) * 2
        self._pcm = bytearray()
        self._resampler = (
            soxr.ResampleStream(start.rate, WHISPER_RATE_HZ, 1, dtype="float32")
            if start.rate != WHISPER_RATE_HZ
            else None
        )

    def add(self, chunk: AudioChunk) -> None:
        """Convert and keep one chunk; it must match the format audio-start declared."""
        if (chunk.rate, chunk.width, chunk.channels) != (self.rate, self.width, self.channels):
            raise BadAudio(
                f"audio-chunk format {chunk.rate} Hz/{chunk.width} B/{chunk.channels} ch "
                f"differs from audio-start's {self.rate} Hz/{self.width} B/{self.channels} ch"
            )
        frame_bytes = self.width * self.channels
        if len(chunk.audio) % frame_bytes:
            raise BadAudio(f"audio-chunk length {len(chunk.audio)} is not whole frames")
        self._keep(self._mono(chunk.audio), last=False)

    def finish(self) -> bytes:
        """All audio received, as 16 kHz mono little-endian s16."""
        self._keep(np.zeros(0, dtype=np.float32), last=True)
        return bytes(self._pcm)

    def _mono(self, audio: bytes) -> np.ndarray:
        samples = np.frombuffer(audio, dtype=WIDTHS[self.width]).astype(np.float32)
        if self.width == 1:
            samples = (samples - 128.0) / 128.0
        else:
            samples /= float(2 ** (8 * self.width - 1))
        return samples.reshape(-1, self.channels).mean(axis=1)

    def _keep(self, mono: np.ndarray, last: bool) -> None:
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono, last=last)
        pcm = (np.clip(mono, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        if len(self._pcm) + len(pcm) > self._max_bytes:
            raise BadAudio(f"audio is longer than {self._max_bytes // 2 / WHISPER_RATE_HZ:.0f} s")
        self._pcm += pcm
