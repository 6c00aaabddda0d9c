"""Reading the test clips as raw PCM (stdlib ``wave``; the clips are 16 kHz mono s16)."""

import wave
from pathlib import Path

from shared.messages import AudioFormat

DATA = Path(__file__).parent / "data"


def read_pcm(name: str) -> tuple[bytes, AudioFormat]:
    """Frames and format of ``tests/data/<name>.wav``."""
    with wave.open(str(DATA / f"{name}.wav"), "rb") as wav:
        fmt = AudioFormat(
            sample_rate_hz=wav.getframerate(),
            channels=wav.getnchannels(),
            sample_width_bytes=wav.getsampwidth(),  # type: ignore[arg-type]
        )
        return wav.readframes(wav.getnframes()), fmt


def reference(name: str) -> str:
    """The reference text of a test clip."""
    return (DATA / f"{name}.txt").read_text().strip()
