"""A deadline and a size limit for a request's head, which uvicorn does not have.

uvicorn closes a keep-alive connection that stays silent after a response, but a connection
that never sends a request, or sends its head a byte at a time (slowloris), is kept forever:
its keep-alive timer starts only once a response is done. ``with_head_deadline`` gives its
httptools protocol a timer from the connection (or the previous response) to the end of the
request head, and closes a connection whose head grows past a size (httptools keeps every
header it is sent); a body and a WebSocket have their own limits (``gate``, ``live/ws``).
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeadDeadline(HttpToolsProtocol):
    head_timeout_s = 10.0  # both set per server by ``with_head_deadline``
    max_head_bytes = 64 * 1024
    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0

    def data_received(self, data: bytes) -> None:
        # Parse first: a chunk may hold the head's end and the start of a body, and only a
        # head still unfinished after it counts against the size.
        super().data_received(data)
        if self._head_timer is not None:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._expired()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expired(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def with_head_deadline(head_timeout_s: float, max_head_bytes: int) -> type[Any]:
    """uvicorn's httptools protocol, closing a connection whose request head is not complete
    within ``head_timeout_s`` of its start (or of the last response), or passes
    ``max_head_bytes``."""
    fields = {"head_timeout_s": head_timeout_s, "max_head_bytes": max_head_bytes}
    return type("HeadDeadlineProtocol", (_HeadDeadline,), fields)
