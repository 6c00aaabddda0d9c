"""Sessions over REST: create, read, delete, who may listen, and the transcript as text, SRT
or VTT. The per-session rules (owner, admins, granted listeners) are in ``access``."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from services.gateway import formats
from services.gateway.auth import Identity, caller
from services.gateway.core import Core, get_core
from services.gateway.errors import GatewayError
from services.gateway.ids import ID_OR_EMPTY_PATTERN, PathId
from services.gateway.live.engine import access
from services.gateway.live.engine.store import ANY_LISTENER, SessionInfo, store_of
from shared.messages import Segment

router = APIRouter(prefix="/v1/sessions", tags=["live"])
MEDIA_TYPES = {"text": "text/plain", "srt": "application/x-subrip", "vtt": "text/vtt"}
MAX_LISTENERS = 1_000
# An API key's identity, or "*" (any listener key); no "/" so it can stand in a path.
IDENTITY_PATTERN = r"^[^\x00-\x1f\x7f/]{1,256}$"
ListenerId = Annotated[str, Field(pattern=IDENTITY_PATTERN, description="an identity, or '*'")]
Caller = Annotated[Identity, Depends(caller)]
CoreDep = Annotated[Core, Depends(get_core)]


class NewSession(BaseModel):
    user_id: str = Field("", pattern=ID_OR_EMPTY_PATTERN)
    listeners: list[ListenerId] = Field(
        default_factory=list,
        max_length=MAX_LISTENERS,
        description="identities that may read the session besides its owner and admins",
    )
    public: bool = Field(False, description="let every listener key read it (same as '*')")


class Grant(BaseModel):
    identity: ListenerId


async def _view(core: Core, info: SessionInfo) -> dict[str, Any]:
    store = store_of(core)
    shown = info.public(await access.guarded(store.ttl(info.id)))
    return shown | {"public": await access.guarded(store.may_listen(info.id, ANY_LISTENER))}


async def _access_view(core: Core, info: SessionInfo) -> dict[str, Any]:
    granted = await access.guarded(store_of(core).listeners(info.id))
    return {
        "session_id": info.id,
        "owner": info.owner or None,
        "public": ANY_LISTENER in granted,
        "listeners": [g for g in granted if g != ANY_LISTENER],
    }


@router.post("", status_code=201)
async def create_session(
    core: CoreDep, identity: Caller, body: NewSession | None = None
) -> dict[str, Any]:
    """A new, empty session owned by the caller; presenters join it with ``auth.session_id``.

    Only its owner, admins and ``listeners`` (everyone with a key, if ``public``) may read it.
    """
    await access.may_open(core, identity)
    wanted = body or NewSession()
    listeners = [*wanted.listeners, *([ANY_LISTENER] if wanted.public else [])]
    store = store_of(core)
    info = await access.guarded(
        store.create(wanted.user_id, owner=identity.name, listeners=listeners)
    )
    return await _view(core, info)


@router.get("/{session_id}")
async def get_session(session_id: PathId, core: CoreDep, identity: Caller) -> dict[str, Any]:
    """A session's owner, clock and number of utterances."""
    return await _view(core, await access.readable(core, identity, session_id))


@router.delete("/{session_id}", status_code=204)
async def delete_session(session_id: PathId, core: CoreDep, identity: Caller) -> Response:
    """Delete a session and its history (its owner or an admin)."""
    await access.owned(core, identity, session_id)
    if not await access.guarded(store_of(core).delete(session_id)):
        raise GatewayError(404, f"no session {session_id!r}", "unknown_session")
    return Response(status_code=204)


@router.get("/{session_id}/listeners")
async def listeners(session_id: PathId, core: CoreDep, identity: Caller) -> dict[str, Any]:
    """Who may read the session besides its owner and admins (its owner or an admin)."""
    return await _access_view(core, await access.owned(core, identity, session_id))


@router.post("/{session_id}/listeners")
async def grant(session_id: PathId, body: Grant, core: CoreDep, identity: Caller) -> dict[str, Any]:
    """Let one identity (``*``: every listener key) read the session."""
    info = await access.owned(core, identity, session_id)
    await access.guarded(store_of(core).grant(session_id, [body.identity]))
    return await _access_view(core, info)


@router.delete("/{session_id}/listeners/{listener}", status_code=204)
async def revoke(
    session_id: PathId,
    listener: Annotated[str, Path(pattern=IDENTITY_PATTERN)],
    core: CoreDep,
    identity: Caller,
) -> Response:
    """Take back one identity's access (``*``: make the session private again)."""
    await access.owned(core, identity, session_id)
    if not await access.guarded(store_of(core).revoke(session_id, listener)):
        message = f"{listener!r} was not granted access to session {session_id!r}"
        raise GatewayError(404, message, "not_granted")
    return Response(status_code=204)


@router.get("/{session_id}/transcript")
async def transcript(
    session_id: PathId,
    core: CoreDep,
    identity: Caller,
    format: Annotated[Literal["text", "srt", "vtt"], Query()] = "text",
) -> Response:
    """The session's final transcript: one line per utterance, or timed SRT/VTT cues."""
    await access.readable(core, identity, session_id)
    cues = await access.guarded(store_of(core).cues(session_id))
    segments = [Segment(id=c.index, start_s=c.start_s, end_s=c.end_s, text=c.text) for c in cues]
    who = [c.speaker for c in cues] if any(c.speaker for c in cues) else None
    if format == "srt":
        body = formats.srt(segments, who)
    elif format == "vtt":
        body = formats.vtt(segments, who)
    else:
        body = "".join(f"{c.speaker}: {c.text}\n" if c.speaker else f"{c.text}\n" for c in cues)
    return Response(body, media_type=MEDIA_TYPES[format])
