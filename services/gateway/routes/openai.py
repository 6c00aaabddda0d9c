"""OpenAI-compatible audio API: ``/v1/audio/transcriptions``, ``/v1/audio/translations`` and
``/v1/models``."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from services.gateway import formats
from services.gateway.audio import read_audio
from services.gateway.core import Core, get_core
from services.gateway.stages.stt import SttOptions, english_stt_model, transcribe

router = APIRouter(prefix="/v1", tags=["openai"])

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
Granularity = Literal["word", "segment"]


def render(transcript: Any, fmt: ResponseFormat, task: str, granularity: list[str]) -> Response:
    """The transcript in the requested response format."""
    if fmt == "text":
        return PlainTextResponse(transcript.text)
    if fmt == "srt":
        return PlainTextResponse(formats.srt(transcript.segments))
    if fmt == "vtt":
        return PlainTextResponse(formats.vtt(transcript.segments), media_type="text/vtt")
    if fmt == "verbose_json":
        words = "word" in granularity
        segments = "segment" in granularity or not granularity
        return JSONResponse(formats.verbose_json(transcript, task, words, segments))
    return JSONResponse({"text": transcript.text})


async def _speech_to_text(
    core: Core,
    file: UploadFile,
    task: str,
    model: str,
    language: str | None,
    prompt: str | None,
    response_format: ResponseFormat,
    granularity: list[Granularity],
) -> Response:
    pcm = await read_audio(core, file)
    options = SttOptions(
        model=model,
        language=(language or None),
        prompt=prompt,
        task=task,
        word_timestamps="word" in granularity,
    )
    transcript = await transcribe(core, pcm, options)
    response = render(transcript, response_format, task, list(granularity))
    response.headers["x-pyparrot-model"] = transcript.model  # which model 'whisper-1' meant
    return response


@router.post("/audio/transcriptions", summary="Transcribe audio (OpenAI-compatible)")
async def transcriptions(
    core: Annotated[Core, Depends(get_core)],
    file: Annotated[UploadFile, File(description="audio in any common format")],
    model: Annotated[str, Form()] = "whisper-1",
    language: Annotated[str | None, Form(max_length=8)] = None,
    prompt: Annotated[str | None, Form(max_length=2_000)] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Annotated[float, Form(ge=0, le=1)] = 0.0,
    timestamp_granularities: Annotated[
        list[Granularity], Form(alias="timestamp_granularities[]")
    ] = [],  # noqa: B006 (FastAPI copies defaults per request)
) -> Response:
    return await _speech_to_text(
        core, file, "transcribe", model, language, prompt, response_format, timestamp_granularities
    )


@router.post("/audio/translations", summary="Speech in any language to English text (OpenAI)")
async def translations(
    core: Annotated[Core, Depends(get_core)],
    file: Annotated[UploadFile, File(description="audio in any common format")],
    model: Annotated[str, Form()] = "whisper-1",
    prompt: Annotated[str | None, Form(max_length=2_000)] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Annotated[float, Form(ge=0, le=1)] = 0.0,
) -> Response:
    # 'whisper-1' needs a multilingual model to translate; English-only models transcribe.
    model = await english_stt_model(core, model)
    return await _speech_to_text(core, file, "translate", model, None, prompt, response_format, [])


@router.get("/models", summary="Models served by live workers (OpenAI-compatible)")
async def models(core: Annotated[Core, Depends(get_core)]) -> dict[str, Any]:
    workers = await core.registry.workers(fresh=True)
    served = sorted({(w.component, w.model) for w in workers if w.model})
    data = [{"id": m, "object": "model", "owned_by": "pyparrot", "component": c} for c, m in served]
    if any(c == "stt" for c, _ in served):
        data.insert(
            0, {"id": "whisper-1", "object": "model", "owned_by": "pyparrot", "component": "stt"}
        )
    return {"object": "list", "data": data}
