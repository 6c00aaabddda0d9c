"""Turning one summarisation job into one summary. No Redis, no environment."""

import math
import time
from collections.abc import Iterator

from services.summarizer import ranking
from services.summarizer.model import BackendError, ExtractiveModel, LlmModel
from services.summarizer.settings import SummarizerSettings
from shared.errors import text_problem
from shared.messages import Envelope, SummarizeRequest, Summary
from shared.worker import JobFailed, Rejected


def sentence_count(available: int, request: SummarizeRequest, settings: SummarizerSettings) -> int:
    """How many sentences the summary may have: ``ratio`` of the text, capped by
    ``max_sentences``; the configured default when the request names neither."""
    if request.ratio is None:
        return request.max_sentences or settings.default_max_sentences
    wanted = max(1, math.ceil(request.ratio * available))
    return min(wanted, request.max_sentences) if request.max_sentences else wanted


def summarize(
    model: ExtractiveModel | LlmModel, settings: SummarizerSettings, request: SummarizeRequest
) -> Summary:
    """Summarise one request with the loaded engine."""
    text = request.text.strip()
    if not text:
        raise Rejected("empty_text", "nothing to summarise")
    if len(text) > settings.max_text_chars:
        raise Rejected(
            "text_too_long", f"text of {len(text)} characters exceeds {settings.max_text_chars}"
        )
    if problem := text_problem(text):
        raise Rejected("invalid_text", problem)
    started = time.perf_counter()
    sentences = ranking.split_sentences(text)
    try:
        summary = model.summarize(sentences, sentence_count(len(sentences), request, settings))
    except BackendError as exc:
        raise JobFailed(exc.code, exc.message) from exc
    return Summary(
        text=summary,
        method=model.method,
        model=model.name,
        source_sentences=len(sentences),
        processing_s=time.perf_counter() - started,
    )


def handle(
    model: ExtractiveModel | LlmModel, settings: SummarizerSettings, job: Envelope
) -> Iterator[Summary]:
    """The worker-loop handler: one summary per job."""
    if not isinstance(job.payload, SummarizeRequest):
        raise Rejected("wrong_kind", f"summarizer cannot handle {job.kind!r}")
    yield summarize(model, settings, job.payload)
