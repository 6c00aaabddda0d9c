"""Fuzzing the two decoders that read untrusted bytes (hypothesis).

``shared.messages.unpack`` (stream entries) may only raise ``DecodeError``;
``services.gateway.audio.decode_to_pcm16`` (uploads) may only raise ``AudioDecodeError``,
for arbitrary bytes and for valid inputs with bytes flipped, inserted or cut off.
Run with ``-s`` to see how many cases each test tried.
"""

import io
import wave
from collections.abc import Callable

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from services.gateway.audio import AudioDecodeError, decode_to_pcm16
from shared.messages import (
    DecodeError,
    Envelope,
    TranscribeRequest,
    TranslateRequest,
    pack,
    unpack,
)
from tests.gateway.conftest import encode

pytestmark = pytest.mark.timeout(180)
FUZZ = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PCM = bytes(range(256)) * 25  # 0.2 s of 16 kHz s16 noise-like samples


def wav_bytes() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(PCM)
    return out.getvalue()


SEEDS = {
    "envelope_stt": pack(Envelope(payload=TranscribeRequest(audio=PCM[:640]), reply_to="r")),
    "envelope_mt": pack(Envelope(payload=TranslateRequest(text="hi", source="en", target="de"))),
    "wav": wav_bytes(),
    "mp3": encode(PCM, 16_000, "mp3", "libmp3lame"),
}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few bytes replaced, inserted or deleted, and maybe truncated."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        value = draw(st.integers(0, 255))
        if op == "flip" and at < len(data):
            data[at] = value
        elif op == "insert":
            data.insert(at, value)
        elif at < len(data):
            del data[at]
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut] if draw(st.booleans()) else data)


def run(strategy: st.SearchStrategy[bytes], check: Callable[[bytes], None], label: str) -> int:
    """Run ``check`` on ``FUZZ.max_examples`` generated inputs; return how many ran."""
    tried = 0

    @FUZZ
    @given(strategy)
    def fuzz(data: bytes) -> None:
        nonlocal tried
        tried += 1
        check(data)

    fuzz()
    print(f"\nfuzz {label}: {tried} cases, 0 unexpected exceptions")
    return tried


def unpack_check(data: bytes) -> None:
    try:
        unpack(data)
    except DecodeError:
        pass


def audio_check(data: bytes) -> None:
    try:
        decode_to_pcm16(data, max_audio_s=30)
    except AudioDecodeError:
        pass


def test_unpack_arbitrary_bytes_raises_only_decode_error() -> None:
    assert run(st.binary(max_size=2_048), unpack_check, "unpack/arbitrary") > 100


@pytest.mark.parametrize("seed", ["envelope_stt", "envelope_mt"])
def test_unpack_mutated_envelopes_raises_only_decode_error(seed: str) -> None:
    assert unpack(SEEDS[seed])  # the seed itself is valid
    assert run(mutated(SEEDS[seed]), unpack_check, f"unpack/{seed}") > 100


def test_audio_arbitrary_bytes_raises_only_audio_decode_error() -> None:
    assert run(st.binary(max_size=4_096), audio_check, "audio/arbitrary") > 100


@pytest.mark.parametrize("seed", ["wav", "mp3"])
def test_audio_mutated_files_raise_only_audio_decode_error(seed: str) -> None:
    assert decode_to_pcm16(SEEDS[seed], 30)  # the seed itself decodes
    assert run(mutated(SEEDS[seed]), audio_check, f"audio/{seed}") > 100
