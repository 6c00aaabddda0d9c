"""Listeners: a session's events as Server-Sent Events, from its Redis stream.

Each listener reads the stream itself (XREAD from its own position), so any gateway replica
can serve it, any number may listen, and none of them can slow the presenter. The SSE id is
the stream entry id: a reconnecting client's ``Last-Event-ID`` resumes right after the last
event it saw. A listener whose socket does not take an event within
``live_send_timeout_s`` is dropped.
"""

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from services.gateway.core import Core, GatewayError, get_core
from services.gateway.live.protocol import SESSION_ID_PATTERN
from services.gateway.live.session import store_of
from shared import bus, streams

router = APIRouter(tags=["live"])
BLOCK_MS = 5_000
PING_S = 15
_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


async def _start_id(core: Core, session_id: str, last_event_id: str | None) -> str:
    """Where this listener starts: after ``Last-Event-ID``, else after the newest event."""
    if last_event_id is not None:
        if not _ENTRY_ID.match(last_event_id):
            raise GatewayError(
                400, f"Last-Event-ID {last_event_id[:40]!r} is no event id", "bad_id"
            )
        return last_event_id
    newest = await core.redis.xrevrange(streams.session_events(session_id), count=1)
    return newest[0][0].decode() if newest else "0-0"


def _wanted(event: dict[str, object], language: str | None) -> bool:
    """A language filter keeps events in that language (and events without one)."""
    return language is None or event.get("language") in (None, language)


async def _events(
    core: Core, session_id: str, position: str, language: str | None
) -> AsyncIterator[ServerSentEvent]:
    store = store_of(core)
    key = streams.session_events(session_id)
    while True:
        try:
            reply = await core.redis.xread({key: position}, count=100, block=BLOCK_MS)
        except bus.TRANSIENT:
            yield ServerSentEvent(data=json.dumps({"code": "bus_down"}), event="error")
            return
        if not reply and await store.get(session_id) is None:
            yield ServerSentEvent(data=json.dumps({"session_id": session_id}), event="ended")
            return
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                position = entry_id.decode()
                event = json.loads(fields[b"d"])
                if _wanted(event, language):
                    event["id"] = position
                    yield ServerSentEvent(data=json.dumps(event), event=event["type"], id=position)


async def _listen(
    core: Core, session_id: str, language: str | None, last_event_id: str | None
) -> EventSourceResponse:
    if await store_of(core).get(session_id) is None:
        raise GatewayError(404, f"no session {session_id!r}", "unknown_session")
    position = await _start_id(core, session_id, last_event_id)
    return EventSourceResponse(
        _events(core, session_id, position, language),
        ping=PING_S,
        send_timeout=core.settings.live_send_timeout_s,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


SessionId = Annotated[str, Query(pattern=SESSION_ID_PATTERN)]
Language = Annotated[str | None, Query(min_length=2, max_length=8)]
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID")]


@router.get("/events")
async def events(
    session_id: SessionId,
    core: Annotated[Core, Depends(get_core)],
    language: Language = None,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """A session's live events (captions, translations, replies) as SSE."""
    return await _listen(core, session_id, language, last_event_id)


@router.get("/v1/sessions/{session_id}/events")
async def session_events(
    session_id: str,
    core: Annotated[Core, Depends(get_core)],
    language: Language = None,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """The same stream as ``/events``, addressed by path."""
    return await _listen(core, session_id, language, last_event_id)
