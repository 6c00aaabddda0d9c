"""One Redis reader per session stream per gateway, fanned out in process to its listeners.

A listener that blocked in its own XREAD held one of the pool's connections for as long as it
listened, so a few hundred listeners starved every other request. Now the first listener of a
session on this gateway starts a reader, each listener gets a bounded queue, and the last one
to leave stops the reader. A listener first catches up from its own position with one XRANGE
(a resumed ``Last-Event-ID``), then takes the shared stream, skipping what it already has.

The reader also rechecks access for all of them at once, every ``ACCESS_RECHECK_S``: one
check per session and one per distinct identity, not one per listener. Caps per API key and
per gateway turn further listeners away with 429.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from services.gateway import keys
from services.gateway.auth import Identity
from services.gateway.core import Core
from services.gateway.errors import GatewayError
from services.gateway.live.engine import access
from services.gateway.live.engine.store import store_of
from shared import bus

log = logging.getLogger(__name__)
# Well under redis-py's default 5 s socket timeout: a longer XREAD block times out (and is
# retried) on an idle session instead of returning empty.
BLOCK_MS = 2_000
ACCESS_RECHECK_S = 5.0
BACKLOG_PAGE = 500


@dataclass(frozen=True)
class Entry:
    id: str
    event: dict[str, Any]
    data: str  # the event with its id, as JSON: encoded once, not once per listener


def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> Entry:
    position = entry_id.decode()
    event = json.loads(fields[b"d"])
    return Entry(position, event, json.dumps({**event, "id": position}))


@dataclass(frozen=True)
class Notice:
    """The last thing a listener gets: why its stream ends."""

    event: str  # "ended" or "error"
    data: dict[str, Any]


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Listener:
    """One SSE client: who it is, and its bounded queue."""

    def __init__(self, identity: Identity, size: int) -> None:
        self.identity = identity
        self.queue: asyncio.Queue[Entry | Notice] = asyncio.Queue(size)

    def offer(self, item: Entry | Notice) -> bool:
        """Queue ``item``; a full queue (a client this far behind) ends the listener."""
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(
                Notice("error", {"code": "too_slow", "message": "too far behind"})
            )
            return False


class SessionReader:
    """The one XREAD loop of a session on this gateway."""

    def __init__(self, core: Core, session_id: str) -> None:
        self.core = core
        self.session_id = session_id
        self.listeners: set[Listener] = set()
        self.task: asyncio.Task[None] | None = None

    def start(self, position: str) -> None:
        self.task = asyncio.create_task(self._guarded(position), name=f"sse:{self.session_id}")

    async def _guarded(self, position: str) -> None:
        # A reader that died unseen would leave every listener waiting on an empty queue.
        try:
            await self._run(position)
        except Exception:
            log.exception("session %s: listener stream failed", self.session_id)
            self._tell(self.listeners, Notice("error", {"code": "internal_error"}))

    def _tell(self, listeners: set[Listener] | list[Listener], item: Entry | Notice) -> None:
        for listener in list(listeners):
            if not listener.offer(item) or isinstance(item, Notice):
                self.listeners.discard(listener)

    async def _recheck(self) -> bool:
        """End the listeners that may no longer read; False once the session is gone."""
        store = store_of(self.core)
        info = await store.get(self.session_id)
        if info is None:
            self._tell(self.listeners, Notice("ended", {"session_id": self.session_id}))
            return False
        verdicts: dict[Identity, bool] = {}  # one check per identity, however many listen
        for listener in list(self.listeners):
            who = listener.identity
            if who not in verdicts:
                verdicts[who] = await access.may_read(store, who, info)
            if not verdicts[who]:
                revoked = {"code": "forbidden", "message": "access to this session was revoked"}
                self._tell([listener], Notice("error", revoked))
        return True

    async def _run(self, position: str) -> None:
        key = keys.session_events(self.session_id)
        # A batch never fills half a listener's queue by itself: only a listener that stopped
        # reading is dropped, not one that reads as fast as events come.
        count = max(1, min(100, self.core.settings.sse_listener_queue // 2))
        checked_s = time.monotonic()
        while self.listeners:
            try:
                reply = await self.core.redis.xread({key: position}, count=count, block=BLOCK_MS)
                if not reply or time.monotonic() - checked_s >= ACCESS_RECHECK_S:
                    checked_s = time.monotonic()
                    if not await self._recheck() and not reply:
                        return
            except bus.TRANSIENT as exc:
                log.warning("session %s: listeners cut off: %s", self.session_id, exc)
                self._tell(self.listeners, Notice("error", {"code": "bus_down"}))
                return
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    entry = _entry(entry_id, fields)
                    position = entry.id
                    self._tell(self.listeners, entry)


@dataclass
class Seat:
    """One admitted listener, counted against its key until released."""

    key: str
    released: bool = False


class Fanout:
    """Every session reader of this gateway, and the listener caps."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.readers: dict[str, SessionReader] = {}
        self.per_key: Counter[str] = Counter()
        self.total = 0

    def admit(self, identity: Identity) -> "Seat":
        """Count one more listener for ``identity``'s key; 429 past a cap. The seat goes back
        with ``release``."""
        s = self.core.settings
        key = identity.key_id or identity.name
        if self.total >= s.sse_max_listeners:
            raise GatewayError(
                429, f"this gateway serves {s.sse_max_listeners} listeners already", "busy"
            )
        if self.per_key[key] >= s.sse_max_listeners_per_key:
            message = f"this API key holds {s.sse_max_listeners_per_key} listeners already"
            raise GatewayError(429, message, "too_many_listeners")
        self.per_key[key] += 1
        self.total += 1
        self.core.metrics.sse_listeners.set(self.total)
        return Seat(key)

    def release(self, seat: "Seat") -> None:
        """Give back a listener counted by ``admit`` (once, however often it is called: a
        response may end before its stream ever started, or after)."""
        if seat.released:
            return
        seat.released = True
        key = seat.key
        self.per_key[key] -= 1
        if self.per_key[key] <= 0:
            del self.per_key[key]
        self.total -= 1
        self.core.metrics.sse_listeners.set(self.total)

    async def events(
        self, identity: Identity, session_id: str, start: str, newest: str
    ) -> AsyncIterator[Entry | Notice]:
        """The session's events after ``start``, then live ones, then a ``Notice``; a new
        reader starts after ``newest``, the stream's last entry."""
        listener = Listener(identity, self.core.settings.sse_listener_queue)
        reader = self.readers.get(session_id)
        if reader is None or reader.task is None or reader.task.done():
            reader = self.readers[session_id] = SessionReader(self.core, session_id)
            reader.listeners.add(listener)
            reader.start(newest)
        else:
            reader.listeners.add(listener)
        try:
            delivered = start
            async for entry in self._backlog(session_id, start):
                delivered = entry.id
                yield entry
            while True:
                item = await listener.queue.get()
                if isinstance(item, Notice):
                    yield item
                    return
                if _order(item.id) > _order(delivered):
                    delivered = item.id
                    yield item
        finally:
            reader.listeners.discard(listener)
            if not reader.listeners and self.readers.get(session_id) is reader:
                del self.readers[session_id]
                if reader.task is not None:
                    reader.task.cancel()

    async def _backlog(self, session_id: str, start: str) -> AsyncIterator[Entry]:
        key = keys.session_events(session_id)
        while True:
            page = await access.guarded(
                self.core.redis.xrange(key, min=f"({start}", count=BACKLOG_PAGE)
            )
            for entry_id, fields in page:
                entry = _entry(entry_id, fields)
                start = entry.id
                yield entry
            if len(page) < BACKLOG_PAGE:
                return

    async def close(self) -> None:
        """Stop every reader (at shutdown)."""
        tasks = [r.task for r in self.readers.values() if r.task is not None]
        self.readers.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
