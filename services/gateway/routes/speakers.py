"""Enrolled people (a memory aid for who is speaking): ``POST /v1/speakers`` enrols a voice
with a name, description and relationship; ``GET`` lists the caller's people; ``DELETE``
forgets one.

Each person belongs to the API-key identity that enrolled them: another identity can neither
list, match nor delete them. Only the voiceprint is kept, never the audio.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile

from services.gateway.audio import read_audio
from services.gateway.auth import Identity, caller
from services.gateway.core import Core, get_core
from services.gateway.errors import GatewayError
from services.gateway.ids import PathId
from services.gateway.stages import speaker as speakers

router = APIRouter(prefix="/v1", tags=["speakers"])
Caller = Annotated[Identity, Depends(caller)]
GAP_BYTES = 2 * 16_000 // 4  # 0.25 s of 16 kHz s16 silence between enrolment clips
MAX_CLIPS = 10


def _text(limit: int, description: str) -> Any:
    return Form(max_length=limit, description=description)


@router.post("/speakers", summary="Enrol a person's voice", status_code=201)
async def enrol(
    core: Annotated[Core, Depends(get_core)],
    identity: Caller,
    file: Annotated[
        list[UploadFile], File(description="one or more recordings of the person speaking")
    ],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    description: Annotated[str, _text(2_000, "e.g. 'last spoke about her promotion'")] = "",
    relationship: Annotated[str, _text(200, "e.g. 'Your daughter'")] = "",
) -> dict[str, object]:
    if len(file) > MAX_CLIPS:
        raise GatewayError(400, f"at most {MAX_CLIPS} recordings per person", "too_many_files")
    if not name.strip():
        raise GatewayError(400, "name is empty", "invalid_text")
    gap = bytes(GAP_BYTES)
    clips = [await read_audio(core, f) for f in file]
    pcm = gap.join(clips)
    result = await speakers.analyse(
        core, pcm, "embed", min_speech_s=core.settings.speaker_min_enrol_speech_s
    )
    fields = {"name": name.strip(), "description": description, "relationship": relationship}
    person = await speakers.enrol(core, identity.name, fields, result.speakers[0])
    return person.public()


@router.get("/speakers", summary="The people this key enrolled")
async def list_people(
    core: Annotated[Core, Depends(get_core)], identity: Caller
) -> dict[str, object]:
    found = await speakers.people(core, identity.name)
    return {"object": "list", "data": [p.public() for p in found]}


@router.delete("/speakers/{person_id}", summary="Forget a person and their voiceprint")
async def forget(
    core: Annotated[Core, Depends(get_core)], identity: Caller, person_id: PathId
) -> dict[str, object]:
    if not await speakers.forget(core, identity.name, person_id):
        raise GatewayError(404, f"no person {person_id!r} was enrolled by this key", "not_found")
    return {"deleted": True, "person_id": person_id}


@router.post("/speakers/identify", summary="Which enrolled person is speaking in a recording")
async def identify(
    core: Annotated[Core, Depends(get_core)],
    identity: Caller,
    file: Annotated[UploadFile, File(description="a recording of one person speaking")],
) -> dict[str, object]:
    pcm = await read_audio(core, file)
    result = await speakers.analyse(core, pcm, "embed", min_speech_s=0.5)
    enrolled = await speakers.people(core, identity.name)
    (found,) = speakers.match(result.speakers, enrolled, core.settings.speaker_match_cosine)
    return {
        "person": found.person.public() if found.person else None,
        "known": found.person is not None,
        "similarity": round(found.similarity, 3),
        "speech_s": result.speech_s,
    }
