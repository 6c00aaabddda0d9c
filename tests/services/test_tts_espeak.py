"""The espeak-ng engine, with the real espeak-ng program: Portuguese and Spanish speech,
sentence-by-sentence streaming, speed, load errors, and a round trip through real Whisper."""

import re
from collections.abc import Callable

import numpy as np
import pytest
import soxr

from services.stt.handler import transcribe
from services.stt.model import load_model as load_stt
from services.stt.settings import SttSettings
from services.tts import espeak_engine
from services.tts.espeak_engine import EspeakEngine, EspeakError, load_espeak
from services.tts.handler import handle, synthesize
from services.tts.model import load_models
from services.tts.settings import TtsSettings
from shared.audio import PCM16, WHISPER_RATE_HZ
from shared.messages import Envelope, SpeechChunk, SynthesizeRequest, TranscribeRequest
from shared.textnorm import wer
from shared.worker import JobFailed
from tests.audio import reference

pytestmark = pytest.mark.model

PORTUGUESE = (
    "Bom dia. O Dr. Silva chegou às dez horas da manhã. "
    "Hoje vamos falar sobre sistemas distribuídos."
)
SPANISH = (
    "Buenos días. ¿Dónde está la estación de tren? "
    "Hoy hablamos de sistemas distribuidos y de cómo se replican los datos."
)


@pytest.fixture(scope="module")
def settings() -> TtsSettings:
    return TtsSettings(engine="espeak", espeak_voice="pt-br, es,en-us", max_text_chars=2_000)


@pytest.fixture(scope="module")
def voices(settings: TtsSettings) -> dict[str, EspeakEngine]:
    engines = load_models(settings)
    assert all(isinstance(engine, EspeakEngine) for engine in engines)
    return {engine.name: engine for engine in engines}  # type: ignore[misc]


def speak(
    engine: EspeakEngine, settings: TtsSettings, text: str, **kw: object
) -> list[SpeechChunk]:
    request = SynthesizeRequest(text=text, **kw)  # type: ignore[arg-type]
    return list(handle(engine, settings, Envelope(payload=request)))


def seconds(chunks: list[SpeechChunk]) -> float:
    return sum(c.audio_format.duration_s(c.audio) for c in chunks)


def test_each_voice_is_served_under_its_own_name(voices: dict[str, EspeakEngine]) -> None:
    assert sorted(voices) == ["espeak-en-us", "espeak-es", "espeak-pt-br"]
    assert [voices[name].languages for name in sorted(voices)] == [["en"], ["es"], ["pt"]]
    assert {(v.engine, v.sample_rate_hz) for v in voices.values()} == {("espeak", 22_050)}


@pytest.mark.parametrize(
    "voice, text, sentence_words",
    [
        # "Dr." does not end a sentence: the splitter knows Portuguese abbreviations.
        ("espeak-pt-br", PORTUGUESE, [2, 8, 5]),
        ("espeak-es", SPANISH, [2, 6, 12]),
    ],
)
def test_speaks_one_chunk_per_sentence(
    voices: dict[str, EspeakEngine],
    settings: TtsSettings,
    voice: str,
    text: str,
    sentence_words: list[int],
) -> None:
    chunks = speak(voices[voice], settings, text, language=voice.split("-")[1])
    assert [c.index for c in chunks] == list(range(len(sentence_words)))
    assert [c.last for c in chunks] == [False] * (len(sentence_words) - 1) + [True]
    for chunk, words in zip(chunks, sentence_words, strict=True):
        fmt = chunk.audio_format
        assert (fmt.sample_rate_hz, fmt.channels, fmt.sample_width_bytes) == (22_050, 1, 2)
        assert chunk.voice == voice and len(chunk.audio) % 2 == 0
        # 175 words a minute is 0.34 s a word; measured 0.24-0.45 s with the pauses.
        assert 0.15 * words < fmt.duration_s(chunk.audio) < 0.8 * words + 0.5
        samples = np.frombuffer(chunk.audio, dtype="<i2").astype(np.float64)
        assert np.sqrt(np.mean(samples**2)) > 500  # speech, not silence (measured 2,400-3,100)


def test_first_sentence_comes_before_the_next_is_synthesised(
    voices: dict[str, EspeakEngine], settings: TtsSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    spoken: list[str] = []
    real_speak: Callable[..., tuple[bytes, int]] = espeak_engine.speak

    def recording_speak(binary: str, voice: str, wpm: int, text: str) -> tuple[bytes, int]:
        spoken.append(text)  # the real espeak-ng still speaks it
        return real_speak(binary, voice, wpm, text)

    monkeypatch.setattr(espeak_engine, "speak", recording_speak)
    chunks = synthesize(voices["espeak-es"], settings, SynthesizeRequest(text=SPANISH))
    first = next(chunks)
    assert first.index == 0 and spoken == ["Buenos días."]
    assert [c.index for c in chunks] == [1, 2] and len(spoken) == 3


@pytest.mark.parametrize("speed, low, high", [(2.0, 0.4, 0.65), (0.25, 1.8, 2.6)])
def test_speed_maps_to_words_per_minute(
    voices: dict[str, EspeakEngine], settings: TtsSettings, speed: float, low: float, high: float
) -> None:
    normal = seconds(speak(voices["espeak-pt-br"], settings, PORTUGUESE))
    changed = seconds(speak(voices["espeak-pt-br"], settings, PORTUGUESE, speed=speed))
    # 2.0 -> 350 wpm (measured 0.46); 0.25 -> espeak-ng's floor of 80 wpm (measured 2.2).
    assert low < changed / normal < high


def test_a_sentence_starting_with_a_dash_is_spoken_not_parsed_as_an_option(
    voices: dict[str, EspeakEngine], settings: TtsSettings
) -> None:
    (chunk,) = speak(voices["espeak-pt-br"], settings, "-5 graus hoje.")
    assert chunk.audio_format.duration_s(chunk.audio) > 0.5


@pytest.mark.parametrize(
    "kw, code",
    [
        ({"text": "... !"}, "empty_text"),
        ({"text": "Olá.", "voice": "espeak-es"}, "unknown_voice"),
        ({"text": "Hello.", "language": "en"}, "unsupported_language"),
    ],
)
def test_bad_requests_fail_for_good(
    voices: dict[str, EspeakEngine], settings: TtsSettings, kw: dict[str, object], code: str
) -> None:
    with pytest.raises(JobFailed) as failed:
        speak(voices["espeak-pt-br"], settings, **kw)  # type: ignore[arg-type]
    assert failed.value.code == code


@pytest.mark.parametrize("voice", ["pt-br-nope", "xx", "pt-br+nope"])
def test_an_unknown_voice_is_a_clear_load_error(voice: str) -> None:
    # espeak-ng itself would speak "pt-br-nope" as pt-br: the list is checked instead.
    with pytest.raises(EspeakError, match=f"no voice '{re.escape(voice)}'.*espeak-ng --voices"):
        load_espeak(TtsSettings(engine="espeak", espeak_voice=f"es,{voice}"))


def test_a_voice_variant_is_served_under_its_full_name() -> None:
    (engine,) = load_espeak(TtsSettings(engine="espeak", espeak_voice="pt-br+f3"))
    assert (engine.name, engine.languages) == ("espeak-pt-br+f3", ["pt"])


def test_no_voice_named_is_a_clear_load_error() -> None:
    with pytest.raises(EspeakError, match="TTS_ESPEAK_VOICE is empty"):
        load_espeak(TtsSettings(engine="espeak", espeak_voice=" , "))


def test_a_missing_espeak_ng_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without espeak-ng on it
    with pytest.raises(EspeakError, match="apt-get install espeak-ng"):
        load_espeak(TtsSettings(engine="espeak"))


def test_round_trip_through_whisper(voices: dict[str, EspeakEngine], settings: TtsSettings) -> None:
    """espeak-ng's formant voice is robotic: tiny.en misses a few words Piper's does not.

    Measured on four English texts (9-42 words): WER 0.00, 0.00, 0.12 and 0.22, with both
    programs deterministic. This text (the lecture clip's 42 words plus one sentence) gave
    0.09-0.12; 0.25 leaves room for other Whisper/espeak-ng builds, while broken audio
    (wrong rate, truncated or garbled chunks) scores far above it.
    """
    text = reference("en_lecture") + " Please return your books before the end of the month."
    chunks = speak(voices["espeak-en-us"], settings, text)
    pcm = np.frombuffer(b"".join(c.audio for c in chunks), dtype="<i2")
    audio16k = soxr.resample(pcm, chunks[0].audio_format.sample_rate_hz, WHISPER_RATE_HZ)
    stt_settings = SttSettings()
    request = TranscribeRequest(audio=audio16k.astype("<i2").tobytes(), audio_format=PCM16)
    result = transcribe(load_stt(stt_settings), stt_settings, request)
    assert wer(text, result.text) <= 0.25, result.text
