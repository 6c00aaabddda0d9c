"""OpenAI-compatible speech: ``POST /v1/audio/speech``, and ``GET /v1/voices``."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.gateway.core import Core, get_core
from services.gateway.errors import bus_guard
from services.gateway.stages import tts

router = APIRouter(prefix="/v1", tags=["openai"])


class SpeechRequest(BaseModel):
    """OpenAI's speech body; ``model`` and ``instructions`` are accepted and ignored."""

    model: str = Field("tts-1", max_length=128)
    input: str = Field(min_length=1, max_length=20_000)
    voice: str = Field("", max_length=128, description="an OpenAI name means the default voice")
    response_format: tts.SpeechFormat = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    instructions: str | None = Field(None, max_length=4_096)
    stream_format: Literal["audio"] = "audio"


@router.post(
    "/audio/speech",
    summary="Speak text (OpenAI-compatible), streamed sentence by sentence",
    response_class=StreamingResponse,
)
async def speech(
    core: Annotated[Core, Depends(get_core)], body: SpeechRequest
) -> StreamingResponse:
    options = tts.SpeechOptions(text=body.input, voice=body.voice, speed=body.speed)
    chunks = await tts.start_speaking(core, options)
    headers = {"Cache-Control": "no-store"}
    if body.response_format == "pcm":
        headers["X-Sample-Rate"] = str(tts.PCM_RATE_HZ)
    return StreamingResponse(
        tts.encoded(chunks, body.response_format),
        media_type=tts.MEDIA_TYPES[body.response_format],
        headers=headers,
    )


@router.get("/voices", summary="Voices served by live TTS workers")
async def voices(core: Annotated[Core, Depends(get_core)]) -> dict[str, Any]:
    with bus_guard():
        live = [w for w in await core.registry.workers(fresh=True) if w.component == "tts"]
    by_voice: dict[str, list[Any]] = {}
    for worker in live:
        by_voice.setdefault(worker.model, []).append(worker)
    data = [
        {
            "id": voice,
            "object": "voice",
            "language": workers[0].languages[0] if workers[0].languages else "",
            "languages": workers[0].languages,
            "engine": workers[0].extra.get("engine", "piper"),
            "workers": len(workers),
        }
        for voice, workers in sorted(by_voice.items())
    ]
    return {"object": "list", "data": data, "aliases": sorted(tts.OPENAI_VOICES - {""})}
