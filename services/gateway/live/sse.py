"""Listeners: a session's events as Server-Sent Events, from its Redis stream.

Each listener reads the stream itself (XREAD from its own position), so any gateway replica
can serve it, any number may listen, and none of them can slow the presenter. The SSE id is
the stream entry id: a reconnecting client's ``Last-Event-ID`` resumes right after the last
event it saw. A listener whose socket does not take an event within
``live_send_timeout_s`` is dropped.

Only an identity that may read the session (``access``) gets its events; the grant is checked
again every ``ACCESS_RECHECK_S``, so revoking a listener (or deleting the session) also ends
a stream that is already open.
"""

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from services.gateway.auth import Identity, caller
from services.gateway.core import Core, GatewayError, get_core
from services.gateway.ids import PathId, QueryId
from services.gateway.live import access
from services.gateway.live.session import store_of
from shared import bus, streams

router = APIRouter(tags=["live"])
# Well under redis-py 8's default 5 s socket timeout: a longer XREAD block times out (and is
# retried) on an idle session instead of returning empty.
BLOCK_MS = 2_000
PING_S = 15
ACCESS_RECHECK_S = 5.0
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


async def _still_allowed(core: Core, identity: Identity, session_id: str) -> bool | None:
    """True if ``identity`` may still read the session, False if not, None if it is gone."""
    store = store_of(core)
    info = await store.get(session_id)
    if info is None:
        return None
    return await access.may_read(store, identity, info)


async def _events(
    core: Core, identity: Identity, session_id: str, position: str, language: str | None
) -> AsyncIterator[ServerSentEvent]:
    key = streams.session_events(session_id)
    checked_s = time.monotonic()
    while True:
        try:
            reply = await core.redis.xread({key: position}, count=100, block=BLOCK_MS)
            recheck = not reply or time.monotonic() - checked_s >= ACCESS_RECHECK_S
            allowed = await _still_allowed(core, identity, session_id) if recheck else True
        except bus.TRANSIENT:
            yield ServerSentEvent(data=json.dumps({"code": "bus_down"}), event="error")
            return
        if recheck:
            checked_s = time.monotonic()
        if allowed is None and not reply:
            yield ServerSentEvent(data=json.dumps({"session_id": session_id}), event="ended")
            return
        if allowed is False:
            refused = {"code": "forbidden", "message": "access to this session was revoked"}
            yield ServerSentEvent(data=json.dumps(refused), event="error")
            return
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                position = entry_id.decode()
                event = json.loads(fields[b"d"])
                if _wanted(event, language):
                    event["id"] = position
                    yield ServerSentEvent(data=json.dumps(event), event=event["type"], id=position)


async def _listen(
    core: Core,
    identity: Identity,
    session_id: str,
    language: str | None,
    last_event_id: str | None,
) -> EventSourceResponse:
    await access.readable(core, identity, session_id)
    position = await access.guarded(_start_id(core, session_id, last_event_id))
    return EventSourceResponse(
        _events(core, identity, session_id, position, language),
        ping=PING_S,
        send_timeout=core.settings.live_send_timeout_s,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


Language = Annotated[str | None, Query(min_length=2, max_length=8)]
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID")]
Caller = Annotated[Identity, Depends(caller)]


@router.get("/events")
async def events(
    session_id: QueryId,
    core: Annotated[Core, Depends(get_core)],
    identity: Caller,
    language: Language = None,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """A session's live events (captions, translations, replies) as SSE."""
    return await _listen(core, identity, session_id, language, last_event_id)


@router.get("/v1/sessions/{session_id}/events")
async def session_events(
    session_id: PathId,
    core: Annotated[Core, Depends(get_core)],
    identity: Caller,
    language: Language = None,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    """The same stream as ``/events``, addressed by path."""
    return await _listen(core, identity, session_id, language, last_event_id)
