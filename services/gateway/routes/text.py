"""Our own text routes: ``POST /v1/summarize`` and ``POST /v1/detect_language``."""

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.gateway import langid
from services.gateway.auth import Identity, caller
from services.gateway.core import Core, get_core
from services.gateway.errors import GatewayError
from services.gateway.ids import ID_PATTERN
from services.gateway.live.engine import access
from services.gateway.stages.summarizer import (
    MAX_TEXT_CHARS,
    SummaryOptions,
    session_text,
    summarize,
)

MAX_DETECT_CHARS = 100_000


@contextlib.asynccontextmanager
async def _warm_up(_app: FastAPI) -> AsyncIterator[None]:
    # Load the language model off the event loop while the gateway starts serving, so the
    # first /v1/detect_language does not pay its ~2 s (a daemon thread: never blocks exit).
    threading.Thread(target=langid.identifier, name="langid-load", daemon=True).start()
    yield


router = APIRouter(prefix="/v1", tags=["text"], lifespan=_warm_up)


class SummarizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, max_length=MAX_TEXT_CHARS, description="text to summarise")
    session_id: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="summarise this live session's transcript so far (instead of text)",
    )
    max_sentences: int | None = Field(None, ge=1, le=200, description="longest summary")
    ratio: float | None = Field(None, gt=0, le=1, description="summary length / text length")
    model: str = Field("", max_length=256, description="a served summarizer; empty picks one")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str | None) -> str | None:
        if text is not None and not text.strip():
            raise ValueError("text is empty (only whitespace)")
        return text

    @model_validator(mode="after")
    def _one_source(self) -> "SummarizeBody":
        if (self.text is None) == (self.session_id is None):
            raise ValueError("give either text or session_id")
        return self


class SummarizeResult(BaseModel):
    summary: str
    method: str
    model: str
    source_sentences: int
    session_id: str | None = None
    truncated: bool = Field(False, description="only the most recent part of the session fit")


@router.post("/summarize", summary="Summarise text, or a live session's transcript so far")
async def summarize_text(
    core: Annotated[Core, Depends(get_core)],
    identity: Annotated[Identity, Depends(caller)],
    body: SummarizeBody,
) -> SummarizeResult:
    truncated = False
    if body.session_id is not None:
        # A session's transcript is as private as GET /v1/sessions/{id}/transcript.
        await access.readable(core, identity, body.session_id)
        text, truncated = await session_text(core, body.session_id)
    else:
        text = body.text or ""
    options = SummaryOptions(max_sentences=body.max_sentences, ratio=body.ratio, model=body.model)
    result = await summarize(core, text, options, body.session_id)
    return SummarizeResult(
        summary=result.text,
        method=result.method,
        model=result.model,
        source_sentences=result.source_sentences,
        session_id=body.session_id,
        truncated=truncated,
    )


class DetectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_DETECT_CHARS, description="text to identify")
    languages: list[str] = Field(
        default_factory=list, max_length=200, description="only choose among these ISO codes"
    )

    @field_validator("text")
    @classmethod
    def _has_letters(cls, text: str) -> str:
        if not any(c.isalpha() for c in text):
            raise ValueError("text has no letters to identify a language from")
        return text


class LanguageScore(BaseModel):
    language_code: str
    confidence: float


class DetectResult(BaseModel):
    detected_language_code: str
    confidence: float = Field(description="probability of the detected language, 0..1")
    alternatives: list[LanguageScore] = Field(description="the best candidates, best first")


@router.post("/detect_language", summary="Identify the language of a text")
async def detect_language(body: DetectBody) -> DetectResult:
    candidates = {code.lower() for code in body.languages}
    if candidates:
        known = await asyncio.to_thread(langid.known_languages)
        if unknown := sorted(candidates - set(known)):
            raise GatewayError(
                400, f"unknown language codes {unknown}; known: {known}", "unsupported_language"
            )
    detection = await asyncio.to_thread(langid.detect, body.text, candidates)
    return DetectResult(
        detected_language_code=detection.language,
        confidence=detection.confidence,
        alternatives=[
            LanguageScore(language_code=c, confidence=p) for c, p in detection.alternatives
        ],
    )
