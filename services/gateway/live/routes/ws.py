"""``/ws/converse``: the presenter's socket (protocol in ``live/protocol.py``).

Outgoing messages go through a bounded queue drained by one sender task, so a client that
stops reading never blocks its session (or anyone else's): when the queue is full or a
send blocks longer than ``live_send_timeout_s`` the client is dropped with a close reason.
Bad messages get an ``error`` event and the socket stays usable.
"""

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from services.gateway.auth import authenticate_socket
from services.gateway.core import Core
from services.gateway.live.engine import access
from services.gateway.live.engine.live_session import LiveSession, control_kind, dumps, reported
from services.gateway.live.engine.protocol import ProtocolError, parse_auth, parse_message

log = logging.getLogger(__name__)
router = APIRouter()
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
CLOSE_TIMEOUT_S = 2.0


class Connection:
    """One WebSocket client: a bounded outgoing queue, and the receive loop."""

    def __init__(self, websocket: WebSocket, core: Core) -> None:
        self.ws = websocket
        self.core = core
        self.queue: asyncio.Queue[str | bytes] = asyncio.Queue(core.settings.live_send_queue)
        self.dropped = asyncio.Event()
        self.reason = ""
        self.close_code = TRY_AGAIN_LATER
        self.session: LiveSession | None = None

    def send_json(self, event: dict[str, Any]) -> None:
        """Queue an event for the client (never blocks)."""
        self._put(dumps(event))

    def send_bytes(self, data: bytes) -> None:
        """Queue binary audio for the client (never blocks)."""
        self._put(data)

    def _put(self, item: str | bytes) -> None:
        if self.dropped.is_set():
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.drop("send queue full: the client is not reading")

    def drop(self, reason: str, code: int = TRY_AGAIN_LATER) -> None:
        """Give up on this client."""
        if not self.dropped.is_set():
            log.warning("dropping /ws/converse client: %s", reason)
            self.reason = reason
            self.close_code = code
            self.dropped.set()

    async def _auth_deadline(self) -> None:
        # A socket costs a task and a queue: one that never says who it is may not keep them.
        timeout_s = self.core.settings.live_auth_timeout_s
        await asyncio.sleep(timeout_s)
        if self.session is None:
            self.drop(f"no successful 'auth' message within {timeout_s:g} s", POLICY_VIOLATION)

    async def _sender(self) -> None:
        timeout_s = self.core.settings.live_send_timeout_s
        while True:
            item = await self.queue.get()
            try:
                async with asyncio.timeout(timeout_s):
                    if isinstance(item, bytes):
                        await self.ws.send_bytes(item)
                    else:
                        await self.ws.send_text(item)
            except TimeoutError:
                self.drop(f"a send blocked for {timeout_s:g} s: the client is not reading")
                return
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.dropped.set()  # gone; the receive loop sees it too
                return

    async def serve(self) -> None:
        """Run until the client leaves or is dropped."""
        sender = asyncio.create_task(self._sender())
        receiver = asyncio.create_task(self._receive())
        gone = asyncio.create_task(self.dropped.wait())
        deadline = asyncio.create_task(self._auth_deadline())
        try:
            await asyncio.wait([receiver, gone], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver, gone, deadline):
                task.cancel()
            await asyncio.wait([sender, receiver, gone, deadline])
            if self.session is not None:
                await self.session.close()
        if self.reason:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self.ws.close(self.close_code, self.reason[:120])

    async def _receive(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            with reported(self, "/ws/converse"):
                if message.get("bytes") is not None:
                    await self._binary(message["bytes"])
                elif message.get("text") is not None:
                    await self._text(message["text"])

    async def _binary(self, data: bytes) -> None:
        if self.session is None:
            raise ProtocolError("not_authenticated", "send 'auth' before audio")
        if len(data) > self.core.settings.live_max_chunk_bytes:
            limit = self.core.settings.live_max_chunk_bytes
            raise ProtocolError("chunk_too_large", f"audio messages are limited to {limit} bytes")
        await self.session.audio(data)

    async def _text(self, text: str) -> None:
        message = parse_message(text)
        if message.get("type") == "auth":
            await self._auth(message)
            return
        kind = control_kind(message)
        if self.session is None:
            raise ProtocolError("not_authenticated", f"send 'auth' before {kind!r}")
        await self.session.control(message)

    async def _auth(self, message: dict[str, Any]) -> None:
        if self.session is not None:
            raise ProtocolError("already_authenticated", "this connection has a session")
        auth = parse_auth(message)
        # A key in the handshake was checked by the router's dependency; otherwise the
        # auth message must carry a presenter key (open mode lets anyone in on loopback).
        identity = getattr(self.ws.state, "identity", None)
        if identity is None:
            identity = await authenticate_socket(self.core, auth.api_key or None)
        if identity is None or not identity.allows("presenter"):
            raise ProtocolError("unauthorized", "a presenter API key is required (auth.api_key)")
        wait_s = await access.opening_wait_s(self.core, identity)
        if wait_s > 0:
            raise ProtocolError("rate_limited", access.too_many_opens(self.core, wait_s))
        self.session = await LiveSession.open(self.core, auth, self, identity)
        self.send_json(self.session.started_event(resumed=auth.session_id is not None))


@router.websocket("/ws/converse")
async def converse(websocket: WebSocket) -> None:
    """Live speech in; captions, translations, replies and speech out."""
    core: Core = websocket.app.state.core
    await websocket.accept()
    await Connection(websocket, core).serve()
