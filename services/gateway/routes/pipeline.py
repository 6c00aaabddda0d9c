"""``POST /v1/pipeline``: audio -> transcript -> translations -> speech in one call."""

import base64
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile

from services.gateway import pipeline
from services.gateway.audio import read_audio
from services.gateway.core import Core, get_core
from services.gateway.errors import GatewayError

router = APIRouter(prefix="/v1", tags=["pipeline"])

MAX_TARGETS = 16
_CODE = re.compile(r"^[a-z]{2,3}$")


def parse_languages(value: str) -> list[str]:
    """A comma list of language codes as base codes, in order, without repeats."""
    codes = [pipeline.base_language(part.strip()) for part in value.split(",") if part.strip()]
    if bad := [c for c in codes if not _CODE.match(c)]:
        raise GatewayError(400, f"not language codes: {bad}", "invalid_language")
    codes = list(dict.fromkeys(codes))
    if len(codes) > MAX_TARGETS:
        raise GatewayError(400, f"at most {MAX_TARGETS} target languages", "too_many_languages")
    return codes


def render(result: pipeline.PipelineResult, speak: bool) -> dict[str, Any]:
    """The response body: one entry per language in ``translations`` (and ``speech``), or
    in ``errors`` with the stage that failed."""
    languages = result.languages.items()
    body: dict[str, Any] = {
        "transcript": result.transcript.text,
        "language": result.transcript.language,
        "language_probability": result.transcript.language_probability,
        "duration_s": result.transcript.duration_s,
        "translations": {k: r.translation for k, r in languages if r.translation is not None},
        "errors": {k: r.error for k, r in languages if r.error is not None},
    }
    if speak:
        body["speech_format"] = "wav"
        body["speech"] = {
            k: base64.b64encode(r.speech_wav).decode() for k, r in languages if r.speech_wav
        }
    return body


@router.post("/pipeline", summary="Transcribe, translate into several languages, and speak")
async def run_pipeline(
    core: Annotated[Core, Depends(get_core)],
    file: Annotated[UploadFile, File(description="audio in any common format")],
    target_languages: Annotated[
        str, Form(max_length=200, description="comma list, e.g. 'pt,es'")
    ] = "",
    speak: Annotated[bool, Form(description="also synthesise each translation")] = False,
    language: Annotated[str | None, Form(max_length=8, description="spoken language")] = None,
    model: Annotated[str, Form(max_length=128, description="STT model")] = "whisper-1",
) -> dict[str, Any]:
    targets = parse_languages(target_languages)
    source = parse_languages(language or "")
    if len(source) > 1:
        raise GatewayError(400, "language names one spoken language", "invalid_language")
    pcm = await read_audio(core, file)
    options = pipeline.PipelineOptions(
        targets=targets,
        speak=speak,
        source_language=source[0] if source else None,
        stt_model=model,
    )
    return render(await pipeline.run(core, pcm, options), speak)
