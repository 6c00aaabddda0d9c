"""Cascaded speech jobs: audio -> transcript -> translations into N languages -> speech.

The gateway sends each stage's job over the bus in turn (no stage calls another); the target
languages run in parallel, and a language that cannot be served (no MT pair, no voice, a
failed job) gets an error entry instead of failing the others.
"""

import asyncio
from dataclasses import dataclass, field

from pydantic import ValidationError

from services.gateway.core import Core
from services.gateway.errors import GatewayError
from services.gateway.stages import mt, tts
from services.gateway.stages.stt import SttOptions, transcribe
from shared.audio import pcm_to_wav
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


async def synthesize_wav(core: Core, text: str, language: str) -> bytes:
    """``text`` spoken by a voice for ``language``, as one WAV file."""
    worker = await tts.voice_for(core, language)
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
