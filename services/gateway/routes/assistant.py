"""The voice-assistant API: ``/stt``, ``/tts``, ``/converse``,
``/detect_language``, ``/session`` and ``/memory``, in that design's request and response
shapes. A thin adapter: each route calls the same core functions as the other APIs.

Kokoro language codes (``a`` American English, ``e`` Spanish, ``p`` Brazilian Portuguese,
...) are accepted and reported beside ISO 639-1 codes, as the seed's clients expect.
"""

import asyncio
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.gateway import langid, memory
from services.gateway.audio import read_audio
from services.gateway.auth import Identity, caller
from services.gateway.core import Core, get_core
from services.gateway.errors import GatewayError, guarded
from services.gateway.ids import Id, PathId, QueryId
from services.gateway.stages import llm, tts
from services.gateway.stages.stt import SttOptions, transcribe

router = APIRouter(tags=["assistant"])

ISO_TO_KOKORO = {"en": "a", "es": "e", "fr": "f", "hi": "h", "it": "i", "ja": "j", "pt": "p"}
ISO_TO_KOKORO["zh"] = "z"
KOKORO_TO_ISO = {v: k for k, v in ISO_TO_KOKORO.items()} | {"b": "en"}
Text = Annotated[str, Field(min_length=1, max_length=20_000)]
ReplyFormat = Literal["json", "wav", "pcm", "mp3", "opus", "aac", "flac"]
Caller = Annotated[Identity, Depends(caller)]


def iso_language(code: str | None) -> str | None:
    """An ISO 639-1 code from an ISO or Kokoro code (``a`` -> ``en``, ``pt-BR`` -> ``pt``)."""
    if not code:
        return None
    code = code.replace("_", "-").split("-", 1)[0].lower()
    return KOKORO_TO_ISO.get(code, code) if len(code) == 1 else code


def _when(epoch_s: float | None) -> str | None:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat() if epoch_s is not None else None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SttResult(BaseModel):
    text: str
    detected_language: str | None = None
    kokoro_language: str | None = None


@router.post("/stt", summary="Transcribe audio")
async def stt(
    core: Annotated[Core, Depends(get_core)],
    file: Annotated[UploadFile, File(description="audio in any common format")],
    language: Annotated[str | None, Form(max_length=8)] = None,
) -> SttResult:
    pcm = await read_audio(core, file)
    result = await transcribe(core, pcm, SttOptions(language=iso_language(language)))
    return SttResult(
        text=result.text,
        detected_language=result.language,
        kokoro_language=ISO_TO_KOKORO.get(result.language),
    )


class TtsBody(_Body):
    text: Text
    language: str | None = Field(None, max_length=8, description="ISO or Kokoro code")
    voice_id: str = Field("", max_length=128, description="a served voice; empty: default")
    response_format: tts.SpeechFormat = "wav"
    speed: float = Field(1.0, ge=0.25, le=4.0)


@router.post("/tts", summary="Speak text, streamed sentence by sentence")
async def speak(core: Annotated[Core, Depends(get_core)], body: TtsBody) -> StreamingResponse:
    options = tts.SpeechOptions(
        text=body.text, voice=body.voice_id, speed=body.speed, language=iso_language(body.language)
    )
    chunks = await tts.start_speaking(core, options)
    media = tts.MEDIA_TYPES[body.response_format]
    return StreamingResponse(tts.encoded(chunks, body.response_format), media_type=media)


class ConverseBody(_Body):
    text: Text
    session_id: Id | None = Field(None, description="continue this session (created if new)")
    user_id: Id | None = Field(None, description="whose memory to use and extend")
    response_format: ReplyFormat = Field("json", description="json, or speak the reply")
    voice_id: str = Field("", max_length=128)


class ConverseResult(BaseModel):
    response_text: str
    session_id: str
    user_id: str | None
    user_text: str = Field(description="what the reply answers (the transcript for audio)")
    turn_count: int
    model: str


async def _converse_input(core: Core, request: Request) -> ConverseBody:
    """The body as JSON, or a multipart form whose ``file`` is transcribed into ``text``."""
    try:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return ConverseBody.model_validate_json(await request.body())
        async with request.form() as form:  # closes the spooled upload files
            fields = {k: v for k, v in form.items() if isinstance(v, str) and k != "language"}
            upload = form.get("file")
            if isinstance(upload, str) or (upload is None and "text" not in fields):
                raise GatewayError(400, "send 'text' or an audio 'file'", "invalid_request")
            if upload is not None:
                language = iso_language(str(form.get("language") or "") or None)
                fields["text"] = await _heard(core, await read_audio(core, upload), language)
        return ConverseBody.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


async def _heard(core: Core, pcm: bytes, language: str | None) -> str:
    heard = await transcribe(core, pcm, SttOptions(language=language))
    if not heard.text.strip():
        raise GatewayError(400, "no speech was recognised in the audio", "no_speech")
    return heard.text


@router.post(
    "/converse",
    summary="Reply to the user (text or audio in; JSON or speech out)",
    response_model=ConverseResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": ConverseBody.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "session_id": {"type": "string"},
                            "user_id": {"type": "string"},
                            "language": {"type": "string"},
                            "response_format": {"type": "string"},
                        },
                    }
                },
            },
        }
    },
)
async def converse(
    core: Annotated[Core, Depends(get_core)], request: Request, identity: Caller
) -> ConverseResult | StreamingResponse:
    body = await _converse_input(core, request)
    session = await llm.open_session(core, body.session_id, body.user_id, identity)
    if body.response_format == "json":
        done = await llm.converse(core, session, body.text)
        return ConverseResult(
            response_text=done.reply_text,
            session_id=session.session_id,
            user_id=session.user_id,
            user_text=body.text,
            turn_count=done.turn_count,
            model=done.model,
        )
    replies = llm.converse_stream(core, session, body.text)
    speech = await llm.primed(llm.speak_replies(core, replies, body.voice_id))
    headers = {"X-Session-Id": session.session_id, "Cache-Control": "no-store"}
    return StreamingResponse(
        tts.encoded(speech, body.response_format),
        media_type=tts.MEDIA_TYPES[body.response_format],
        headers=headers,
    )


class DetectBody(_Body):
    text: Text


class DetectResult(BaseModel):
    detected_language_code: str | None
    kokoro_language_code: str | None
    confidence: float | None


@router.post("/detect_language", summary="Identify the language of a text")
async def detect_language(body: DetectBody) -> DetectResult:
    if not any(c.isalpha() for c in body.text):
        raise GatewayError(400, "text has no letters to identify a language from", "no_letters")
    found = await asyncio.to_thread(langid.detect, body.text)
    return DetectResult(
        detected_language_code=found.language,
        kokoro_language_code=ISO_TO_KOKORO.get(found.language),
        confidence=found.confidence,
    )


class SessionCreate(_Body):
    user_id: Id | None = None


class TurnInfo(BaseModel):
    user: str
    assistant: str
    at: str | None


class SessionInfo(BaseModel):
    session_id: str
    user_id: str | None
    created_at: str | None
    last_accessed: str | None
    turn_count: int
    history: list[TurnInfo] = []


def _session_info(session: memory.Session, turns: list[memory.Turn]) -> SessionInfo:
    return SessionInfo(
        session_id=session.session_id,
        user_id=session.user_id,
        created_at=_when(session.created_s),
        last_accessed=_when(session.last_s),
        turn_count=session.turn_count,
        history=[TurnInfo(user=t.user, assistant=t.assistant, at=_when(t.at_s)) for t in turns],
    )


async def _existing(core: Core, session_id: str, identity: Identity) -> memory.Session:
    found = await guarded(memory.get_session(core.redis, session_id))
    if found is None:
        raise GatewayError(404, f"session {session_id!r} does not exist", "not_found")
    llm.check_owner(found, identity)
    return found


async def _not_anothers(core: Core, session_id: str | None, identity: Identity) -> None:
    """A memory call may name a conversation that is the caller's or none at all."""
    if session_id is not None:
        found = await guarded(memory.get_session(core.redis, session_id))
        if found is not None:
            llm.check_owner(found, identity)


@router.post("/session", summary="Start a conversation session", status_code=201)
async def create_session(
    core: Annotated[Core, Depends(get_core)], identity: Caller, body: SessionCreate | None = None
) -> SessionInfo:
    ttl_s = llm.limits(core.settings).session_ttl_s
    user_id = body.user_id if body else None
    created = await guarded(memory.create_session(core.redis, user_id, ttl_s, owner=identity.name))
    return _session_info(created, [])


@router.get("/session/{session_id}", summary="A session's info and recent turns")
async def get_session(
    core: Annotated[Core, Depends(get_core)], session_id: PathId, identity: Caller
) -> SessionInfo:
    found = await _existing(core, session_id, identity)
    return _session_info(found, await guarded(memory.history(core.redis, session_id)))


@router.delete("/session/{session_id}", summary="Forget a session")
async def delete_session(
    core: Annotated[Core, Depends(get_core)], session_id: PathId, identity: Caller
) -> dict[str, str]:
    await _existing(core, session_id, identity)
    if not await guarded(memory.delete_session(core.redis, session_id)):
        raise GatewayError(404, f"session {session_id!r} does not exist", "not_found")
    return {"message": "session deleted", "session_id": session_id}


class MemoryQuery(_Body):
    query_text: Annotated[str, Field(min_length=1, max_length=2_000)]
    user_id: Id
    session_id: Id | None = None
    top_k: int = Field(3, ge=1, le=50)

    @field_validator("query_text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("query_text is empty (only whitespace)")
        return text


class MemoryItem(BaseModel):
    text: str
    score: float | None = None
    metadata: dict[str, Any] | None = None


class MemoryQueryResult(BaseModel):
    results: list[MemoryItem]
    summary: str | None = None


@router.post("/memory/query", summary="Recall the user's memory entries most like a text")
async def memory_query(
    core: Annotated[Core, Depends(get_core)], body: MemoryQuery, identity: Caller
) -> MemoryQueryResult:
    await _not_anothers(core, body.session_id, identity)
    user = memory.User(identity.name, body.user_id)  # this key's user, never another's
    hits = await guarded(memory.query_memory(core.redis, user, body.query_text, body.top_k))
    items = [
        MemoryItem(
            text=h.entry.text,
            score=round(h.score, 4),
            metadata={
                "entry_id": h.entry.entry_id,
                "user_text": h.entry.user_text,
                "assistant_text": h.entry.assistant_text,
                "timestamp": _when(h.entry.at_s),
                "session_id": h.entry.session_id,
            },
        )
        for h in hits
    ]
    return MemoryQueryResult(results=items, summary=None)


class MemoryAdd(_Body):
    user_text: Text
    assistant_text: Annotated[str, Field(max_length=20_000)]
    user_id: Id
    session_id: Id | None = None


@router.post("/memory/add", summary="Store an exchange in the user's memory", status_code=201)
async def memory_add(
    core: Annotated[Core, Depends(get_core)], body: MemoryAdd, identity: Caller
) -> dict[str, str]:
    await _not_anothers(core, body.session_id, identity)
    entry = memory.MemoryEntry(
        "", body.user_text, body.assistant_text, time.time(), body.session_id
    )
    max_entries = llm.limits(core.settings).memory_max_entries
    user = memory.User(identity.name, body.user_id)
    entry_id = await guarded(memory.add_memory(core.redis, user, entry, max_entries))
    return {"message": "memory entry added", "entry_id": entry_id}


class MemorySummary(BaseModel):
    user_id: str
    session_id: str | None = None
    total_entries: int
    last_updated: str | None
    topics: list[str] = Field(description="the commonest words of the user's messages")


async def _summary(core: Core, user: memory.User) -> MemorySummary:
    stats = await guarded(memory.memory_stats(core.redis, user))
    return MemorySummary(
        user_id=user.user_id,
        total_entries=stats.total_entries,
        last_updated=_when(stats.last_updated_s),
        topics=stats.topics,
    )


class SummaryBody(_Body):
    user_id: Id


@router.get("/memory/summary", summary="How much the user's memory holds")
async def memory_summary(
    core: Annotated[Core, Depends(get_core)],
    user_id: QueryId,
    identity: Caller,
) -> MemorySummary:
    return await _summary(core, memory.User(identity.name, user_id))


@router.post("/memory/summary", summary="The same, with the user in a JSON body (as the seed)")
async def memory_summary_body(
    core: Annotated[Core, Depends(get_core)], body: SummaryBody, identity: Caller
) -> MemorySummary:
    return await _summary(core, memory.User(identity.name, body.user_id))
