"""Cascaded speech jobs: audio -> transcript -> translations into N languages -> speech.

The gateway sends each stage's job over the bus in turn (no stage calls another); the target
languages run in parallel, and a language that cannot be served (no MT pair, no voice, a
failed job) gets an error entry instead of failing the others.
"""

import asyncio
from dataclasses import dataclass, field

from pydantic import ValidationError

from services.gateway import mt, tts
from services.gateway.core import Core, SttOptions, live_workers, transcribe
from services.gateway.errors import GatewayError, bus_guard
from services.gateway.registry import OPENAI_STT_ALIASES
from shared.audio import pcm_to_wav
from shared.heartbeat import WorkerInfo
from shared.messages import Transcript


@dataclass(frozen=True)
class PipelineOptions:
    targets: list[str]
    speak: bool = False
    source_language: str | None = None
    stt_model: str = "whisper-1"


@dataclass
class LanguageResult:
    translation: str | None = None
    speech_wav: bytes | None = None
    error: dict[str, str] | None = None


@dataclass
class PipelineResult:
    transcript: Transcript
    languages: dict[str, LanguageResult] = field(default_factory=dict)


def base_language(code: str) -> str:
    """'pt-BR' and 'pt_br' both mean 'pt': workers serve base languages."""
    return code.replace("_", "-").split("-", 1)[0].lower()


async def english_stt_model(core: Core, model: str) -> str:
    """The STT model for speech -> English text. An OpenAI alias picks a live multilingual
    model (Whisper translates); with only English models live it stays the default one,
    which transcribes: right for English speech, wrong for any other (documented)."""
    if model not in OPENAI_STT_ALIASES:
        return model
    with bus_guard():
        live = [w for w in await core.registry.workers() if w.component == "stt"]
    multilingual = [w for w in live if len(w.languages) > 1]
    return min(multilingual, key=lambda w: (w.in_flight, w.name)).model if multilingual else model


async def speech_to_english(core: Core, pcm16: bytes, language: str) -> str:
    """English text of 16 kHz speech in ``language`` by Whisper's translate task (direct,
    end-to-end speech translation); empty for English speech, whose transcript is already
    the answer. 503 if no multilingual model runs (English-only models cannot translate)."""
    if language == "en":
        return ""
    model = await english_stt_model(core, "whisper-1")
    live = await live_workers(core, "stt", "speech-to-text")
    if not any(w.model == model and len(w.languages) > 1 for w in live):
        raise GatewayError(
            503,
            "speech translation needs a multilingual Whisper model (e.g. STT_MODEL=base); "
            f"served models: {sorted({w.model for w in live})}",
            "no_worker",
        )
    options = SttOptions(model=model, language=language, task="translate")
    return (await transcribe(core, pcm16, options)).text


async def voice_for(core: Core, language: str) -> WorkerInfo:
    """A live TTS worker whose voice speaks ``language``."""
    live = await live_workers(core, "tts", "text-to-speech")
    fit = [w for w in live if language in w.languages]
    if not fit:
        voices = sorted({f"{w.model} ({'/'.join(w.languages)})" for w in live})
        raise GatewayError(400, f"no voice speaks {language!r}; voices: {voices}", "no_voice")
    return min(fit, key=lambda w: (w.in_flight, w.model))


async def synthesize_wav(core: Core, text: str, language: str) -> bytes:
    """``text`` spoken by a voice for ``language``, as one WAV file."""
    worker = await voice_for(core, language)
    options = tts.SpeechOptions(text=text, voice=worker.model, language=language)
    chunks = [chunk async for chunk in tts.speak(core, options)]
    return pcm_to_wav(b"".join(c.audio for c in chunks), chunks[0].audio_format)


def _error(stage: str, exc: Exception) -> dict[str, str]:
    if isinstance(exc, GatewayError):
        return {"stage": stage, "code": exc.code, "message": exc.message}
    return {"stage": stage, "code": "invalid_request", "message": str(exc).splitlines()[0]}


async def one_language(
    core: Core, text: str, source: str, target: str, speak: bool
) -> LanguageResult:
    """Translate (and speak) the transcript in one target language; errors become an entry."""
    if not text.strip():
        return LanguageResult(
            error={"stage": "stt", "code": "empty_transcript", "message": "no speech recognised"}
        )
    result = LanguageResult()
    try:
        result.translation = (
            text if target == source else (await mt.translate(core, text, source, target)).text
        )
    except (GatewayError, ValidationError) as exc:  # ValidationError: text over the MT limit
        result.error = _error("mt", exc)
        return result
    if speak:
        try:
            result.speech_wav = await synthesize_wav(core, result.translation, target)
        except (GatewayError, ValidationError) as exc:
            result.error = _error("tts", exc)
    return result


async def run(core: Core, pcm16: bytes, options: PipelineOptions) -> PipelineResult:
    """Transcribe 16 kHz mono PCM, then translate (and speak) it in every target language."""
    stt = SttOptions(model=options.stt_model, language=options.source_language)
    transcript = await transcribe(core, pcm16, stt)
    source = base_language(transcript.language)
    results = await asyncio.gather(
        *(
            one_language(core, transcript.text, source, target, options.speak)
            for target in options.targets
        )
    )
    return PipelineResult(transcript, dict(zip(options.targets, results, strict=True)))
