"""OpenAI-compatible audio API: ``/v1/audio/transcriptions``, ``/v1/audio/translations`` and
``/v1/models``."""

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from services.gateway import formats
from services.gateway.audio import read_audio
from services.gateway.auth import Identity, caller
from services.gateway.core import Core, get_core
from services.gateway.errors import GatewayError, guarded
from services.gateway.ids import ID_PATTERN
from services.gateway.live.engine.access import owned
from services.gateway.live.engine.store import store_of
from services.gateway.stages import speaker as speakers
from services.gateway.stages.speaker import Match
from services.gateway.stages.stt import SttOptions, english_stt_model, transcribe
from shared.messages import SpeakerResult, Transcript

router = APIRouter(prefix="/v1", tags=["openai"])

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
Granularity = Literal["word", "segment"]


@dataclass(frozen=True)
class Diarized:
    labels: list[str | None]  # each segment's speaker, "S1", "S2", ...
    word_labels: list[str | None]  # each word's
    matches: list[Match]

    def names(self) -> list[str | None]:
        """Each segment's speaker as subtitles show it: a recognised person's name, else S1."""
        by_label = {m.speaker: m.person.name for m in self.matches if m.person}
        return [by_label.get(label, label) if label else None for label in self.labels]

    def summary(self, result: SpeakerResult) -> list[dict[str, Any]]:
        """One entry per speaker: speech time and the enrolled person recognised, if any."""
        speech = {v.speaker: v.speech_s for v in result.speakers}
        return [
            {
                "speaker": m.speaker,
                "speech_s": speech.get(m.speaker, 0.0),
                "person": m.person.public() if m.person else None,
                "similarity": round(m.similarity, 3),
            }
            for m in self.matches
        ]


def render(
    transcript: Any,
    fmt: ResponseFormat,
    task: str,
    granularity: list[str],
    diarized: tuple[Diarized, SpeakerResult] | None = None,
) -> Response:
    """The transcript in the requested response format (speakers marked when diarized)."""
    who = diarized[0] if diarized else None
    if fmt == "text":
        return PlainTextResponse(transcript.text)
    if fmt == "srt":
        return PlainTextResponse(formats.srt(transcript.segments, who and who.names()))
    if fmt == "vtt":
        text = formats.vtt(transcript.segments, who and who.names())
        return PlainTextResponse(text, media_type="text/vtt")
    if fmt == "verbose_json":
        words = "word" in granularity
        segments = "segment" in granularity or not granularity
        body = formats.verbose_json(
            transcript, task, words, segments, who and who.labels, who and who.word_labels
        )
        if diarized:
            body["speakers"] = diarized[0].summary(diarized[1])
        return JSONResponse(body)
    return JSONResponse({"text": transcript.text})


async def diarize(
    core: Core, pcm: bytes, identity: Identity, count: int | None
) -> tuple[SpeakerResult, list[Match]]:
    """Who spoke when in ``pcm``, and which of the caller's people each speaker is."""
    result = await speakers.analyse(core, pcm, "diarize", num_speakers=count)
    enrolled = await speakers.people(core, identity.name)
    return result, speakers.match(result.speakers, enrolled, core.settings.speaker_match_cosine)


@dataclass(frozen=True)
class DiarizeOptions:
    identity: Identity | None = None  # set: diarize, and recognise this identity's people
    num_speakers: int | None = None
    session_id: str | None = None  # set: the people recognised are announced to its listeners


def person_events(diarized: Diarized, transcript: Transcript) -> list[dict[str, Any]]:
    """Seed 004's ``person`` event for each turn of a recognised person, in speaking order,
    as a live session announces them."""
    by_label = {m.speaker: m for m in diarized.matches if m.person is not None}
    events, last = [], None
    for segment, label in zip(transcript.segments, diarized.labels, strict=True):
        if label == last or label is None:
            continue
        last = label
        if (found := by_label.get(label)) is not None and found.person is not None:
            where = {"start": round(segment.start_s, 3), "source": "upload"}
            events.append(speakers.person_event(found.person, found.similarity, label, **where))
    return events


async def _speech_to_text(
    core: Core,
    file: UploadFile,
    task: str,
    model: str,
    language: str | None,
    prompt: str | None,
    response_format: ResponseFormat,
    granularity: list[Granularity],
    who: DiarizeOptions = DiarizeOptions(),  # noqa: B008 (frozen)
) -> Response:
    pcm = await read_audio(core, file)
    options = SttOptions(
        model=model,
        language=(language or None),
        prompt=prompt,
        task=task,
        word_timestamps="word" in granularity,
    )
    diarized = None
    if who.identity is None:
        transcript = await transcribe(core, pcm, options)
    else:  # the speaker stage works beside the STT one
        transcript, (result, matches) = await asyncio.gather(
            transcribe(core, pcm, options), diarize(core, pcm, who.identity, who.num_speakers)
        )
        labels = speakers.label_transcript(transcript, result)
        diarized = (Diarized(labels, speakers.label_words(transcript, result), matches), result)
        if who.session_id is not None:
            store = store_of(core)
            for event in person_events(diarized[0], transcript):
                await guarded(store.publish(who.session_id, event))
    response = render(transcript, response_format, task, list(granularity), diarized)
    response.headers["x-pyparrot-model"] = transcript.model  # which model 'whisper-1' meant
    return response


@router.post("/audio/transcriptions", summary="Transcribe audio (OpenAI-compatible)")
async def transcriptions(
    core: Annotated[Core, Depends(get_core)],
    identity: Annotated[Identity, Depends(caller)],
    file: Annotated[UploadFile, File(description="audio in any common format")],
    model: Annotated[str, Form()] = "whisper-1",
    language: Annotated[str | None, Form(max_length=8)] = None,
    prompt: Annotated[str | None, Form(max_length=2_000)] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Annotated[float, Form(ge=0, le=1)] = 0.0,
    timestamp_granularities: Annotated[
        list[Granularity], Form(alias="timestamp_granularities[]")
    ] = [],  # noqa: B006 (FastAPI copies defaults per request)
    diarize: Annotated[
        bool, Form(description="label segments (and words) with their speaker, S1, S2, ...")
    ] = False,
    num_speakers: Annotated[
        int | None, Form(ge=1, le=32, description="known number of speakers (diarize)")
    ] = None,
    session_id: Annotated[
        str | None,
        Form(
            pattern=ID_PATTERN,
            description="a live session of yours whose listeners hear who was recognised",
        ),
    ] = None,
) -> Response:
    if session_id is not None:
        if not diarize:
            raise GatewayError(400, "session_id needs diarize=true", "invalid_request")
        await owned(core, identity, session_id)  # only its presenter speaks into a session
    who = DiarizeOptions(identity if diarize else None, num_speakers, session_id)
    return await _speech_to_text(
        core,
        file,
        "transcribe",
        model,
        language,
        prompt,
        response_format,
        timestamp_granularities,
        who,
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
