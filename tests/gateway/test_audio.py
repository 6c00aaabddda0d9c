"""Upload decoding: the WAV fast path matches FFmpeg's output; other layouts are resampled."""

import io
import wave

import numpy as np
import pytest

from services.gateway.audio import AudioDecodeError, _ffmpeg_decode, decode_to_pcm16
from tests.audio import DATA, read_pcm


def test_wav_fast_path_matches_ffmpeg() -> None:
    data = (DATA / "en_short.wav").read_bytes()
    assert decode_to_pcm16(data, 60) == _ffmpeg_decode(data, 60, 10**9)


def test_stereo_44k_wav_is_resampled_to_16k_mono() -> None:
    pcm, fmt = read_pcm("en_short")
    mono = np.frombuffer(pcm, dtype="<i2")
    upsampled = np.interp(np.arange(0, len(mono), 16_000 / 44_100), np.arange(len(mono)), mono)
    stereo = np.repeat(upsampled.astype("<i2")[:, None], 2, axis=1)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(44_100)
        wav.writeframes(stereo.tobytes())
    out = decode_to_pcm16(buf.getvalue(), 60)
    assert len(out) / 2 / 16_000 == pytest.approx(fmt.duration_s(pcm), abs=0.02)


def test_too_long_audio_is_refused_on_both_paths() -> None:
    data = (DATA / "en_short.wav").read_bytes()
    with pytest.raises(AudioDecodeError, match="longer than"):
        decode_to_pcm16(data, 1.0)
