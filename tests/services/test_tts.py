"""The TTS handler with the real bundled Piper voice, and a round trip through real Whisper."""

import functools

import numpy as np
import pytest
import soxr

from services.stt.handler import transcribe
from services.stt.model import load_model as load_stt
from services.stt.settings import SttSettings
from services.tts.handler import handle, synthesize
from services.tts.model import TtsModel, load_model
from services.tts.settings import TtsSettings
from shared.audio import PCM16, WHISPER_RATE_HZ
from shared.messages import Envelope, SpeechChunk, SynthesizeRequest, TranscribeRequest
from shared.textnorm import wer
from shared.worker import JobFailed

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def settings() -> TtsSettings:
    return TtsSettings(max_text_chars=500)


@functools.cache
def bundled_voice() -> TtsModel:
    """The bundled voice, loaded once per test session (the gateway tests share it)."""
    return load_model(TtsSettings())


@pytest.fixture(scope="module")
def joe() -> TtsModel:
    return bundled_voice()


def speak(model: TtsModel, settings: TtsSettings, text: str, **kw: object) -> list[SpeechChunk]:
    request = SynthesizeRequest(text=text, **kw)  # type: ignore[arg-type]
    return list(handle(model, settings, Envelope(payload=request)))


def test_bundled_voice_loads_with_its_metadata(joe: TtsModel) -> None:
    assert joe.name == "en_US-joe-medium"
    assert joe.languages == ["en"] and joe.sample_rate_hz == 22_050


def test_one_chunk_per_sentence_the_last_marked(joe: TtsModel, settings: TtsSettings) -> None:
    chunks = speak(joe, settings, "Good morning. The weather is fine today.")
    assert [c.index for c in chunks] == [0, 1]
    assert [c.last for c in chunks] == [False, True]
    for chunk in chunks:
        fmt = chunk.audio_format
        assert (fmt.sample_rate_hz, fmt.channels, fmt.sample_width_bytes) == (22_050, 1, 2)
        assert 0.4 < fmt.duration_s(chunk.audio) < 4.0
        assert chunk.voice == "en_US-joe-medium"


def test_speed_shortens_the_audio(joe: TtsModel, settings: TtsSettings) -> None:
    text = "Speed changes how long this sentence takes."
    normal, fast = speak(joe, settings, text)[0], speak(joe, settings, text, speed=2.0)[0]
    ratio = fast.audio_format.duration_s(fast.audio) / normal.audio_format.duration_s(normal.audio)
    assert 0.35 < ratio < 0.75  # Piper varies phoneme lengths randomly (noise_w)


@pytest.mark.parametrize(
    "kw, code",
    [
        ({"text": "   "}, "empty_text"),
        ({"text": "..."}, "empty_text"),
        ({"text": "Hello.", "voice": "nobody"}, "unknown_voice"),
        ({"text": "Hello.", "language": "de"}, "unsupported_language"),
        ({"text": "word " * 200}, "text_too_long"),
    ],
)
def test_bad_requests_fail_for_good(
    joe: TtsModel, settings: TtsSettings, kw: dict[str, object], code: str
) -> None:
    with pytest.raises(JobFailed) as failed:
        speak(joe, settings, **kw)  # type: ignore[arg-type]
    assert failed.value.code == code


def test_first_sentence_comes_before_the_rest_is_synthesised(
    joe: TtsModel, settings: TtsSettings
) -> None:
    chunks = synthesize(joe, settings, SynthesizeRequest(text="One. Two. Three."))
    first = next(chunks)  # a lazy generator: only the first sentence has been spoken
    assert first.index == 0 and not first.last
    assert [c.last for c in chunks] == [False, True]


def test_round_trip_through_whisper(joe: TtsModel, settings: TtsSettings) -> None:
    text = (
        "The library opens early in the morning. "
        "Please return your books before the end of the month."
    )
    chunks = speak(joe, settings, text)
    pcm = np.frombuffer(b"".join(c.audio for c in chunks), dtype="<i2")
    audio16k = soxr.resample(pcm, chunks[0].audio_format.sample_rate_hz, WHISPER_RATE_HZ)
    stt_settings = SttSettings()
    request = TranscribeRequest(audio=audio16k.astype("<i2").tobytes(), audio_format=PCM16)
    result = transcribe(load_stt(stt_settings), stt_settings, request)
    assert wer(text, result.text) <= 0.05, result.text
