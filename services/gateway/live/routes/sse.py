"""Listeners: a session's events as Server-Sent Events.

Events come from the session's Redis stream through this gateway's ``fanout``: one reader per
session, however many listen, so listeners cost no Redis connection each; any gateway replica
can serve any listener. The SSE id is the stream entry id: a reconnecting client's
``Last-Event-ID`` resumes right after the last event it saw. A listener whose socket does not
take an event within ``live_send_timeout_s``, or whose queue fills, is dropped; listeners per
API key and per gateway are capped (429).

Only an identity that may read the session (``access``) gets its events; the grant is checked
again every ``fanout.ACCESS_RECHECK_S``, so revoking a listener (or deleting the session) also
ends a stream that is already open.
"""

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from services.gateway.auth import Identity, caller
from services.gateway.core import Core
from services.gateway.errors import GatewayError
from services.gateway.ids import PathId, QueryId
from services.gateway.live.engine import access
from services.gateway.live.engine.fanout import Fanout, Notice, Seat
from services.gateway.live.engine.store import store_of

router = APIRouter(tags=["live"])
PING_S = 15
_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def _start_id(last_event_id: str | None, newest: str) -> str:
    """Where this listener starts: after ``Last-Event-ID``, else after the newest event."""
    if last_event_id is None:
        return newest
    if not _ENTRY_ID.match(last_event_id):
        raise GatewayError(400, f"Last-Event-ID {last_event_id[:40]!r} is no event id", "bad_id")
    return last_event_id


def _wanted(event: dict[str, object], language: str | None) -> bool:
    """A language filter keeps events in that language (and events without one)."""
    return language is None or event.get("language") in (None, language)


async def _events(
    fanout: Fanout, identity: Identity, session_id: str, start: str, newest: str,
    language: str | None, seat: Seat,
) -> AsyncIterator[ServerSentEvent]:  # fmt: skip
    try:
        async for item in fanout.events(identity, session_id, start, newest):
            if isinstance(item, Notice):
                yield ServerSentEvent(data=json.dumps(item.data), event=item.event)
                return
            if _wanted(item.event, language):
                yield ServerSentEvent(data=item.data, event=item.event["type"], id=item.id)
    finally:
        fanout.release(seat)


async def _listen(
    request: Request,
    identity: Identity,
    session_id: str,
    language: str | None,
    last_event_id: str | None,
) -> EventSourceResponse:
    core: Core = request.app.state.core
    fanout: Fanout = request.app.state.fanout
    await access.readable(core, identity, session_id)
    newest = await access.guarded(store_of(core).newest_event(session_id))
    start = _start_id(last_event_id, newest)
    seat = fanout.admit(identity)
    body = _events(fanout, identity, session_id, start, newest, language, seat)

    async def finished() -> None:
        await body.aclose()  # a stream cut off by a disconnect is left suspended, not closed
        fanout.release(seat)  # and one that never started has no finally to run

    return EventSourceResponse(
        body,
        ping=PING_S,
        send_timeout=core.settings.live_send_timeout_s,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(finished),
    )


Language = Annotated[str | None, Query(min_length=2, max_length=8)]
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID")]
Caller = Annotated[Identity, Depends(caller)]


@router.get("/events")
async def events(
    session_id: QueryId,
    request: Request,
    identity: Caller,
    language: Language = None,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """A session's live events (captions, translations, replies) as SSE."""
    return await _listen(request, identity, session_id, language, last_event_id)


@router.get("/v1/sessions/{session_id}/events")
async def session_events(
    session_id: PathId,
    request: Request,
    identity: Caller,
    language: Language = None,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """The same stream as ``/events``, addressed by path."""
    return await _listen(request, identity, session_id, language, last_event_id)
