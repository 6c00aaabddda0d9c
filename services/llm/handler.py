"""Turning one chat job into reply chunks, a sentence at a time. No Redis, no environment.

A sentence goes out as soon as the next one starts, so speech synthesis can begin while
the model is still writing; the final chunk (``last``) carries the rest of the text.
"""

import re
import time
from collections.abc import Iterable, Iterator

from services.llm.model import ChatModel, Delta, ModelError
from services.llm.settings import LlmSettings
from shared.errors import text_problem
from shared.messages import ChatReply, ChatRequest, Envelope
from shared.worker import Rejected

# End of a sentence: terminal punctuation (and closing quotes/brackets) then whitespace,
# or a line break.
SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s+|\n+")
MIN_SENTENCE_CHARS = 12  # "Hi!" or a list's "1." joins what follows: TTS prefers phrases
MAX_SENTENCE_CHARS = 400  # a run-on sentence is cut at a space so speech need not wait


def _split(buffer: str) -> tuple[str, str] | None:
    """(a complete sentence, the rest) if ``buffer`` holds one, else None."""
    for match in SENTENCE_END.finditer(buffer):
        if len(buffer[: match.start()].strip()) >= MIN_SENTENCE_CHARS:
            return buffer[: match.end()].strip(), buffer[match.end() :]
    if len(buffer) > MAX_SENTENCE_CHARS and (cut := buffer.rfind(" ", 0, MAX_SENTENCE_CHARS)) > 0:
        return buffer[:cut].strip(), buffer[cut + 1 :]
    return None


def sentences(deltas: Iterable[Delta]) -> Iterator[tuple[str, bool, str]]:
    """(sentence, is_last, finish_reason) from streamed text; the last may be empty."""
    buffer, reason = "", ""
    for delta in deltas:
        buffer += delta.text
        reason = delta.finish_reason or reason
        while (found := _split(buffer)) is not None:
            sentence, buffer = found
            yield sentence, False, ""
    yield buffer.strip(), True, reason or "stop"


def prepare(settings: LlmSettings, request: ChatRequest) -> list[dict[str, str]]:
    """The messages sent to the model: the configured system prompt merged in front."""
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    if not any(m["content"].strip() for m in messages if m["role"] == "user"):
        raise Rejected("empty_messages", "the conversation has no user message with text")
    for message in messages:
        if message["role"] == "user" and (problem := text_problem(message["content"])):
            raise Rejected("invalid_text", problem)
    if settings.system_prompt:
        if messages[0]["role"] == "system":
            content = f"{settings.system_prompt}\n\n{messages[0]['content']}"
            messages[0] = {"role": "system", "content": content}
        else:
            messages.insert(0, {"role": "system", "content": settings.system_prompt})
    return messages


def reply(model: ChatModel, settings: LlmSettings, request: ChatRequest) -> Iterator[ChatReply]:
    """Answer one conversation, one chunk per sentence as soon as it is complete."""
    messages = prepare(settings, request)
    started = time.perf_counter()
    max_tokens = min(request.max_tokens, settings.max_tokens_limit)
    deltas = model.chat(messages, max_tokens, request.temperature)
    try:
        for index, (text, last, reason) in enumerate(sentences(deltas)):
            yield ChatReply(
                text=text,
                index=index,
                last=last,
                model=model.name,
                finish_reason=reason,
                processing_s=time.perf_counter() - started,
            )
    except ModelError as exc:  # e.g. the conversation exceeds the context window
        raise Rejected("model_refused", str(exc)) from exc
    finally:
        deltas.close()  # type: ignore[attr-defined]


def handle(model: ChatModel, settings: LlmSettings, job: Envelope) -> Iterator[ChatReply]:
    """The worker-loop handler: reply chunks, the last marked ``last``."""
    if not isinstance(job.payload, ChatRequest):
        raise Rejected("wrong_kind", f"llm cannot handle {job.kind!r}")
    yield from reply(model, settings, job.payload)
