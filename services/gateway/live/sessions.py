"""Sessions over REST: create, read, delete, and the transcript as text, SRT or VTT."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from services.gateway import formats
from services.gateway.core import Core, GatewayError, get_core
from services.gateway.live.session import store_of
from services.gateway.live.store import SessionInfo
from shared.messages import Segment

router = APIRouter(prefix="/v1/sessions", tags=["live"])
MEDIA_TYPES = {"text": "text/plain", "srt": "application/x-subrip", "vtt": "text/vtt"}


class NewSession(BaseModel):
    user_id: str = Field("", max_length=128)


async def _found(core: Core, session_id: str) -> SessionInfo:
    info = await store_of(core).get(session_id)
    if info is None:
        raise GatewayError(404, f"no session {session_id!r}", "unknown_session")
    return info


@router.post("", status_code=201)
async def create_session(
    core: Annotated[Core, Depends(get_core)], body: NewSession | None = None
) -> dict[str, Any]:
    """A new, empty session; presenters join it with ``auth.session_id``."""
    store = store_of(core)
    info = await store.create((body or NewSession()).user_id)
    return info.public(store.ttl_s)


@router.get("/{session_id}")
async def get_session(session_id: str, core: Annotated[Core, Depends(get_core)]) -> dict[str, Any]:
    """A session's owner, clock and number of utterances."""
    info = await _found(core, session_id)
    return info.public(await store_of(core).ttl(session_id))


@router.delete("/{session_id}", status_code=204)
async def delete_session(session_id: str, core: Annotated[Core, Depends(get_core)]) -> Response:
    """Delete a session and its history."""
    if not await store_of(core).delete(session_id):
        raise GatewayError(404, f"no session {session_id!r}", "unknown_session")
    return Response(status_code=204)


@router.get("/{session_id}/transcript")
async def transcript(
    session_id: str,
    core: Annotated[Core, Depends(get_core)],
    format: Annotated[Literal["text", "srt", "vtt"], Query()] = "text",
) -> Response:
    """The session's final transcript: one line per utterance, or timed SRT/VTT cues."""
    await _found(core, session_id)
    cues = await store_of(core).cues(session_id)
    segments = [Segment(id=c.index, start_s=c.start_s, end_s=c.end_s, text=c.text) for c in cues]
    if format == "srt":
        body = formats.srt(segments)
    elif format == "vtt":
        body = formats.vtt(segments)
    else:
        body = "".join(f"{c.text}\n" for c in cues)
    return Response(body, media_type=MEDIA_TYPES[format])
