"""Summaries through the bus: a one-shot text, or the transcript of a session so far."""

from dataclasses import dataclass

from services.gateway.core import Core, call, check_text
from services.gateway.errors import GatewayError, bus_guard
from services.gateway.live.engine.store import store_of
from services.gateway.stages.workers import live_workers, serving
from shared.heartbeat import WorkerInfo
from shared.messages import SummarizeRequest, Summary

MAX_TEXT_CHARS = 200_000  # the wire contract's limit (messages.SummarizeRequest.text)
# The summarizer's failures of ours with their own HTTP status (core.call answers 502 for
# the rest, and the client's mistakes as ``shared.errors`` says).
STATUS_BY_CODE = {
    "backend_unavailable": 503,
    "backend_timeout": 504,
}


@dataclass(frozen=True)
class SummaryOptions:
    max_sentences: int | None = None
    ratio: float | None = None
    model: str = ""  # a served summarizer model; empty picks one


async def session_text(core: Core, session_id: str) -> tuple[str, bool]:
    """A session's transcript so far, one utterance a line; True if it had to be cut to the
    most recent ``MAX_TEXT_CHARS`` (a rolling summary cares most about the recent part)."""
    with bus_guard():
        items = await store_of(core).transcript(session_id)
    lines = [item.strip() for item in items]
    text = "\n".join(line for line in lines if line)
    if not text:
        raise GatewayError(404, f"session {session_id!r} has no transcript yet", "no_transcript")
    if len(text) <= MAX_TEXT_CHARS:
        return text, False
    tail = text[-MAX_TEXT_CHARS:]
    return tail[tail.find("\n") + 1 :] if "\n" in tail else tail, True  # whole utterances


async def summarizer_worker(core: Core, model: str) -> WorkerInfo:
    """The worker for ``model``; if none is named, an LLM-backed one when live (an operator
    who configured an LLM wants abstractive summaries), else extractive."""
    live = await live_workers(core, "summarizer", "summarization")
    if model:
        chosen = serving(live, model, "model", "unknown_model")
    else:
        chosen = live
    return min(chosen, key=lambda w: (not w.model.startswith("llm:"), w.in_flight, w.name))


async def summarize(
    core: Core, text: str, options: SummaryOptions, session_id: str | None = None
) -> Summary:
    """Summarise ``text`` on a summarizer worker."""
    check_text(text)
    worker = await summarizer_worker(core, options.model)
    payload = SummarizeRequest(
        text=text, max_sentences=options.max_sentences, ratio=options.ratio, session_id=session_id
    )
    try:
        result = await call(core, worker.stream, payload, "summarizer")
    except GatewayError as exc:
        if exc.code in STATUS_BY_CODE:
            raise GatewayError(STATUS_BY_CODE[exc.code], exc.message, exc.code) from exc
        raise
    if not isinstance(result, Summary):
        kind = getattr(result, "kind", "?")
        raise GatewayError(502, f"summarizer answered with {kind!r}", "bad_reply")
    return result
