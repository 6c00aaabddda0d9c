"""Talking with the assistant: history and memory from Redis in, an LLM worker's reply out,
sentence by sentence (and optionally spoken, each sentence as soon as it is written).

Workers stay stateless: each job carries the whole context. The gateway keeps a session's
turns and a user's memory (``memory.py``) and appends each exchange once it is complete.
"""

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

from services.gateway import memory
from services.gateway.auth import Identity
from services.gateway.core import Core, check_text, stream_replies
from services.gateway.errors import GatewayError, bus_guard, worker_error
from services.gateway.settings import GatewaySettings
from services.gateway.stages import tts
from services.gateway.stages.workers import least_busy, live_workers
from shared import streams
from shared.heartbeat import WorkerInfo
from shared.messages import ChatMessage, ChatReply, ChatRequest, Envelope, ErrorResult, SpeechChunk

COMPONENT = "llm"
# An unreachable backend is 503; other worker errors map as ``core.worker_error`` says.
UNAVAILABLE_CODES = {"backend_unavailable"}
T = TypeVar("T")


@dataclass(frozen=True)
class DialogLimits:
    """How much context a conversation carries; GatewaySettings fields override these."""

    dialog_history_turns: int = 8  # turns kept per session and sent to the model
    dialog_context_chars: int = 6_000  # history + memory sent, to fit a 2k-token context
    dialog_memory_hits: int = 3  # memory entries recalled into each prompt
    dialog_max_tokens: int = 256
    dialog_temperature: float = 0.3
    dialog_max_text_chars: int = 4_000  # longest user message
    session_ttl_s: int = 24 * 3_600  # a silent session is forgotten after this
    memory_max_entries: int = 1_000  # per user; the oldest go first


def limits(settings: GatewaySettings) -> DialogLimits:
    """The dialog limits, taking any that ``settings`` defines."""
    defaults = DialogLimits()
    fields = defaults.__dataclass_fields__
    return DialogLimits(**{f: getattr(settings, f, getattr(defaults, f)) for f in fields})


@dataclass(frozen=True)
class Exchange:
    """One finished turn: what was said, by whom, in which session."""

    session: memory.Session
    user_text: str
    reply_text: str
    model: str
    turn_count: int


async def llm_worker(core: Core) -> WorkerInfo:
    """The least busy live LLM worker; 503 if none runs."""
    live = await live_workers(core, COMPONENT, "LLM")
    return least_busy(live)


def _check(result: Envelope) -> ChatReply:
    if isinstance(result.payload, ErrorResult):
        error = result.payload
        if error.code in UNAVAILABLE_CODES:
            raise GatewayError(503, f"llm failed: {error.message}", error.code)
        raise worker_error("llm", error)
    if not isinstance(result.payload, ChatReply):
        raise GatewayError(502, f"llm answered with {result.kind!r}", "bad_reply")
    return result.payload


async def chat(core: Core, request: ChatRequest, turn: int = 0) -> AsyncIterator[ChatReply]:
    """Send a conversation to an LLM worker; yield its reply chunks as they arrive.
    ``turn`` > 0 marks a live session's turn, which a barge-in can cancel at the worker."""
    for message in request.messages:
        if message.role == "user":
            check_text(message.content)
    worker = await llm_worker(core)
    timeout_s = core.settings.request_timeout_s
    job = core.bridge.job(request, timeout_s, request.session_id, turn)
    stream = streams.jobs(COMPONENT, worker.model)
    async for result in stream_replies(core, stream, job, COMPONENT):
        yield _check(result)


def check_owner(session: memory.Session, caller: Identity) -> None:
    """403 unless ``caller`` created ``session`` or is an admin."""
    if not caller.owns(session.owner):
        raise GatewayError(
            403, f"session {session.session_id!r} belongs to another API key", "forbidden"
        )


async def open_session(
    core: Core, session_id: str | None, user_id: str | None, caller: Identity
) -> memory.Session:
    """The named session (created for ``caller`` if new), or a fresh one; 403 if it is
    another identity's or another user's."""
    ttl_s = limits(core.settings).session_ttl_s
    with bus_guard():
        found = await memory.get_session(core.redis, session_id) if session_id else None
        if found is None:
            return await memory.create_session(
                core.redis, user_id, ttl_s, session_id, owner=caller.name
            )
    check_owner(found, caller)
    if user_id and found.user_id and found.user_id != user_id:
        raise GatewayError(403, f"session {session_id!r} belongs to another user", "forbidden")
    return found


async def context(core: Core, session: memory.Session, text: str) -> list[ChatMessage]:
    """The messages for the model: recalled memory, recent turns (within budget), the text."""
    lim = limits(core.settings)
    turns = await memory.history(core.redis, session.session_id)
    hits = []
    if (user := session.memory_user) is not None and lim.dialog_memory_hits:
        hits = await memory.query_memory(core.redis, user, text, lim.dialog_memory_hits)
    budget = lim.dialog_context_chars - len(text)
    messages: list[ChatMessage] = []
    for turn in reversed(turns[-lim.dialog_history_turns :]):
        budget -= len(turn.user) + len(turn.assistant)
        if budget < 0:
            break
        said = [("user", turn.user), ("assistant", turn.assistant)]
        messages[:0] = [ChatMessage(role=role, content=content) for role, content in said]
    recalled = [h.entry.text for h in hits if len(h.entry.text) <= budget]
    if recalled:
        note = "Earlier conversations with this user:\n" + "\n".join(recalled)
        messages.insert(0, ChatMessage(role="system", content=note))
    return [*messages, ChatMessage(role="user", content=text)]


async def remember(core: Core, session: memory.Session, user_text: str, reply: str) -> int:
    """Append the exchange to the session (and to the user's memory); the turn count."""
    lim = limits(core.settings)
    now = time.time()
    turn = memory.Turn(user_text, reply, now)
    count = await memory.append_turn(
        core.redis, session.session_id, turn, lim.dialog_history_turns, lim.session_ttl_s
    )
    if (user := session.memory_user) is not None:
        entry = memory.MemoryEntry("", user_text, reply, now, session.session_id)
        await memory.add_memory(core.redis, user, entry, lim.memory_max_entries)
    return count


async def converse_stream(
    core: Core, session: memory.Session, text: str, turn: int = 0
) -> AsyncIterator[ChatReply]:
    """Reply to ``text`` in ``session``, chunk by chunk; the exchange is stored at the end."""
    lim = limits(core.settings)
    if not text.strip():
        raise GatewayError(400, "there is nothing to reply to (empty text)", "empty_text")
    if len(text) > lim.dialog_max_text_chars:
        message = f"text is longer than {lim.dialog_max_text_chars} characters"
        raise GatewayError(413, message, "text_too_long")
    request = ChatRequest(
        messages=await context(core, session, text),
        max_tokens=lim.dialog_max_tokens,
        temperature=lim.dialog_temperature,
        session_id=session.session_id,
        user_id=session.user_id,
    )
    parts = []
    async for chunk in chat(core, request, turn):
        parts.append(chunk.text)
        yield chunk
    reply = " ".join(p for p in parts if p)
    await remember(core, session, text, reply)


async def converse(core: Core, session: memory.Session, text: str) -> Exchange:
    """Reply to ``text`` in ``session`` and return the whole exchange."""
    parts, model = [], ""
    async for chunk in converse_stream(core, session, text):
        parts.append(chunk.text)
        model = chunk.model
    found = await memory.get_session(core.redis, session.session_id)
    count = found.turn_count if found else 0
    return Exchange(session, text, " ".join(p for p in parts if p), model, count)


async def speak_replies(
    core: Core, replies: AsyncIterator[ChatReply], voice: str = ""
) -> AsyncIterator[SpeechChunk]:
    """Speak each reply sentence as soon as it arrives (the LLM keeps writing meanwhile)."""
    async for reply in replies:
        if not tts.speakable(reply.text):
            continue
        try:
            async for chunk in tts.speak(core, tts.SpeechOptions(text=reply.text, voice=voice)):
                yield chunk
        except GatewayError as exc:
            if exc.code != "empty_text":  # e.g. a sentence of only "..." has nothing to say
                raise


async def primed(items: AsyncIterator[T]) -> AsyncIterator[T]:
    """``items`` with its first element already received, so errors raise here, before an
    HTTP response starts."""
    try:
        first = await anext(items)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await items.aclose()  # type: ignore[attr-defined]
        raise

    async def rest() -> AsyncIterator[T]:
        try:
            if first is not None:
                yield first
                async for item in items:
                    yield item
        finally:
            await items.aclose()  # type: ignore[attr-defined]

    return rest()
