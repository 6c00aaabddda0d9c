"""Raw PCM helpers shared by the gateway and the speech workers (numpy only)."""

import io
import wave

import numpy as np

from shared.messages import AudioFormat

WHISPER_RATE_HZ = 16_000
PCM16 = AudioFormat(sample_rate_hz=WHISPER_RATE_HZ, channels=1, sample_width_bytes=2)


def to_float32_mono(audio: bytes, fmt: AudioFormat) -> np.ndarray:
    """Little-endian signed PCM to float32 in [-1, 1], channels averaged."""
    dtype = np.dtype("<i2") if fmt.sample_width_bytes == 2 else np.dtype("<i4")
    scale = float(2 ** (8 * fmt.sample_width_bytes - 1))
    samples = np.frombuffer(audio, dtype=dtype).astype(np.float32) / scale
    if fmt.channels > 1:
        samples = samples.reshape(-1, fmt.channels).mean(axis=1)
    return samples


def float32_to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] to 16-bit little-endian PCM (clipped)."""
    clipped = np.clip(samples, -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def pcm_to_wav(pcm: bytes, fmt: AudioFormat) -> bytes:
    """Raw PCM wrapped in a complete WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(fmt.channels)
        wav.setsampwidth(fmt.sample_width_bytes)
        wav.setframerate(fmt.sample_rate_hz)
        wav.writeframes(pcm)
    return out.getvalue()
